/** Reads a query array in either form the SDKs send: `include[]=a&include[]=b` or `include=a&include=b`. */
export function queryArray(query: unknown, name: string): string[] | undefined {
  const record = (query ?? {}) as Record<string, unknown>;
  const values = [record[name], record[`${name}[]`]].flatMap((value) =>
    value === undefined ? [] : Array.isArray(value) ? value : [value],
  );
  return values.length ? values.map(String) : undefined;
}

/**
 * The ids of a response's chain, oldest first, ending with the response: up its `parent_id`
 * links, each the nearest ancestor still stored (deletions move a child's link up, so a deleted
 * response leaves no gap). `head` is the dialect's placeholder for the response id. Parents are
 * always older than their children, so the links cannot form a cycle.
 */
export function chainPathSql(head: string): string {
  return `with recursive chain(id, parent, depth) as (
      select id, parent_id, 0 from responses where id = ${head}
      union all
      select responses.id, responses.parent_id, chain.depth + 1
      from chain join responses on responses.id = chain.parent
    )
    select id from chain order by depth desc`;
}

/**
 * The compatibility contract: every feature Ferry supports, supports when the backend can,
 * echoes without effect, or refuses, each linked to the tests that prove it. Served at
 * `GET /v1/compatibility`; `test/compat/manifest.test.ts` fails the build when a linked test
 * does not exist, when a refused feature is accepted (it sends each `probe`), or when the
 * engine refuses a parameter the manifest does not list.
 *
 * Numbers in `checklist` are the behaviours of the Responses API reference checklist
 * (../shared/reference/responses-api.md §11). When a feature lands, move its entry to
 * `supported` and link the tests that prove it. Link only tests that prove what the entry
 * claims; say in `note` or `condition` what they do not.
 */

export type Support =
  /** Works with every backend kind. */
  | 'supported'
  /** Works when the backend or model can (see `condition`). */
  | 'conditional'
  /** Accepted and echoed in the Response for client compatibility; no effect on generation. */
  | 'echoed'
  /** Refused loudly: a 400 naming the parameter, or 404 for an endpoint Ferry does not serve. */
  | 'unsupported';

/** A test that proves a feature: its file and its title as written in the source. */
export interface TestLink {
  file: string;
  test: string;
}

/** A request the gateway must refuse, and how. */
export interface Probe {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  expect: { status: 400 | 404; code: string; param?: string | null };
}

export interface Feature {
  id: string;
  area: string;
  title: string;
  status: Support;
  checklist?: number[];
  /** What the backend or model must be able to do (conditional features). */
  condition?: string;
  note?: string;
  tests: TestLink[];
  /** For unsupported features: the refusal the gate checks. */
  probe?: Probe;
}

const RESPONSES = 'test/contract/responses.test.ts';
const ERRORS = 'test/contract/errors.test.ts';
const INPUTS = 'test/contract/inputs.test.ts';
const MODELS = 'test/contract/models.test.ts';
const FIELDS = 'test/contract/compatibility-fields.test.ts';
const LIMITS = 'test/contract/limits.test.ts';
const TENANTS = 'test/contract/tenants.test.ts';
const TOOLS = 'test/contract/tools.test.ts';
const STRUCTURED = 'test/contract/structured-outputs.test.ts';
const REASONING = 'test/contract/reasoning.test.ts';
const BACKGROUND = 'test/contract/background.test.ts';
const CRASH = 'test/crash/background-crash.test.ts';
const REPLICAS = 'test/replicas/replicas.test.ts';
const CODEX_WIRE = 'test/contract/codex-wire.test.ts';
const ENGINE_TOOLS = 'test/engine/tools.test.ts';
const OUTPUT_GUARD = 'test/engine/output-guard.test.ts';
const GATE = 'test/compat/manifest.test.ts';

const t = (file: string, test: string): TestLink => ({ file, test });
const REFUSED = t(GATE, 'refuses every feature the manifest marks unsupported');
const VALIDATION = t(ERRORS, 'rejects %s with a 400 naming the parameter');
const BLOCKING = t(
  RESPONSES,
  'creates a blocking response with every field of the Response object (1, 4–18)',
);
const STREAM_ORDER = t(
  RESPONSES,
  'streams with the exact event order, and the stored response equals the terminal snapshot (78–95, 86)',
);

const refusedParam = (param: string, body: Record<string, unknown>): Probe => ({
  method: 'POST',
  path: '/v1/responses',
  body: { model: 'm', input: 'x', ...body },
  expect: { status: 400, code: 'unsupported_parameter', param },
});

const missingEndpoint = (method: Probe['method'], path: string, body?: Record<string, unknown>): Probe => ({
  method,
  path,
  ...(body ? { body } : {}),
  expect: { status: 404, code: 'unknown_url' },
});

const BACKEND_REFUSALS = t(
  RESPONSES,
  'maps backend refusals before the first byte to plain HTTP errors (36, 100)',
);
const RETRIEVE_DELETE = t(
  RESPONSES,
  'retrieves and deletes stored responses; unknown ids are 404 with the error envelope (19–22)',
);
const INPUT_ITEMS = t(
  RESPONSES,
  'lists input items newest first, pages with after/limit, and auto-paginates (2, 23–28)',
);
const ITEM_LISTS = t(
  RESPONSES,
  'accepts item lists with every role, typed or not, and replayed output items (3, 51–53, 57)',
);
const ECHOES = t(
  RESPONSES,
  'echoes metadata, instructions and sampling parameters, and passes sampling to the backend (5, 6, 13)',
);
const ECHO_ONLY = t(
  FIELDS,
  'accepts and echoes verbosity and cache retention without sending them to the backend, alongside penalties, a reasoning summary and tool_choice none without tools',
);
const CHAINS = t(
  RESPONSES,
  'chains with previous_response_id across three turns without inheriting instructions (119–122)',
);
const UNSTORED = t(RESPONSES, 'refuses to chain onto unknown or unstored responses (40, 118)');
const INCOMPLETE = t(
  RESPONSES,
  'ends incomplete when max_output_tokens is exhausted, streamed and blocking (72, 101)',
);
const SDK_STREAM = t(RESPONSES, 'works with responses.stream() and finalResponse() (104)');
const MID_STREAM = t(RESPONSES, 'turns a mid-stream backend failure into error + response.failed (98)');
const STREAM_CHECKER = t('test/harness/stream-checker.test.ts', 'rejects %s');
const CANCEL = t(
  ERRORS,
  'answers unknown ids and URLs with 404, and cancel of a foreground response with 400 (110, 111)',
);
const TOOL_HISTORY = 'test/contract/tool-history.test.ts';
const HOSTED_TOOLS = t(TOOLS, 'refuses %s with a 400 naming tools[i].type (69)');
const UNHONOURABLE_CHOICES = t(
  TOOLS,
  'refuses choices that cannot be honoured with a 400 naming the parameter',
);
const TOOL_STREAM = t(
  TOOLS,
  'streams a call as added → argument deltas → done with name → item done (94, 95)',
);
const REASONING_STREAM = t(
  REASONING,
  'streams thinking as a reasoning item before the message, with reasoning_text events and the asked-for summary (76, 77, 96, 97)',
);
const SEALED_REASONING = t(
  REASONING,
  'seals reasoning when asked, and restores it into the conversation when sent back (74)',
);
const BACKGROUND_POLL = t(BACKGROUND, 'returns queued at once and polls to completion (106, 107)');
const BACKGROUND_STREAM = t(
  BACKGROUND,
  'streams created(queued) → queued → in_progress → … → completed, and replays it identically (112, 113)',
);
const BACKGROUND_RESUME = t(
  BACKGROUND,
  'keeps running when the client drops the stream, and resumes with responses.stream({response_id, starting_after}) mid-way and after the end (114–116)',
);
const A_FUNCTION_TOOL = [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }];
/** Tool calls need a model that can call tools; what Ferry adds is checked the same everywhere. */
const TOOL_MODEL_NOTE =
  "Needs a model that calls tools (Ollama's 'does not support tools' becomes a 400 naming tools). Ferry checks every call and retries once, then fails rather than return a call that breaks the request's rules.";
const CONVERSATIONS = missingEndpoint('POST', '/v1/conversations', { items: [] });
const FILES = missingEndpoint('POST', '/v1/files');
const EMBEDDINGS = missingEndpoint('POST', '/v1/embeddings', { model: 'm', input: 'x' });
const CHAT = missingEndpoint('POST', '/v1/chat/completions', { model: 'm', messages: [] });

const AREAS: [last: number, area: string][] = [
  [32, 'endpoints'],
  [48, 'validation'],
  [57, 'input'],
  [69, 'tools'],
  [77, 'output'],
  [105, 'streaming'],
  [117, 'background'],
  [130, 'state'],
  [136, 'files'],
  [139, 'embeddings'],
  [144, 'chat'],
];

/** One behaviour of the reference checklist. */
function item(
  n: number,
  id: string,
  title: string,
  status: Support,
  tests: TestLink[],
  extra: Pick<Feature, 'condition' | 'note' | 'probe'> = {},
): Feature {
  const area = AREAS.find(([last]) => n <= last)![1];
  return { id, area, title, status, checklist: [n], tests, ...extra };
}

const unsupported = (
  n: number,
  id: string,
  title: string,
  probe: Probe,
  note?: string,
  tests: TestLink[] = [],
): Feature => item(n, id, title, 'unsupported', [REFUSED, ...tests], { probe, ...(note ? { note } : {}) });

/** The reference checklist (responses-api.md §11), behaviour by behaviour. */
const CHECKLIST: Feature[] = [
  // Endpoints and envelopes
  item(1, 'responses.create', 'POST /v1/responses returns a completed Response (resp_ id)', 'supported', [
    BLOCKING,
  ]),
  item(2, 'responses.input.string', 'A string input is one user message', 'supported', [INPUT_ITEMS]),
  item(3, 'responses.input.easy_messages', '{role, content} items without type are accepted', 'supported', [
    ITEM_LISTS,
  ]),
  item(4, 'responses.object.all_keys', 'Every key of the Response object is present', 'supported', [
    BLOCKING,
  ]),
  item(
    5,
    'responses.object.numbers',
    'temperature, top_p, penalties are numbers; top_logprobs an integer',
    'supported',
    [BLOCKING, ECHOES],
  ),
  item(6, 'responses.object.metadata', 'metadata echoed ({} when absent)', 'supported', [ECHOES, BLOCKING]),
  item(7, 'responses.object.completed_at', 'completed_at set when completed, null otherwise', 'supported', [
    BLOCKING,
    INCOMPLETE,
  ]),
  item(
    8,
    'responses.object.error_null',
    'error and incomplete_details null on a completed response',
    'supported',
    [BLOCKING],
  ),
  item(9, 'responses.object.usage_shape', 'usage with every token detail', 'supported', [BLOCKING]),
  item(
    10,
    'responses.object.usage_totals',
    'usage totals consistent (estimated when the backend reports none)',
    'supported',
    [BLOCKING, t('test/engine/response-builder.test.ts', 'estimates usage when the backend reports none')],
  ),
  item(
    11,
    'responses.object.output_text',
    'output_text equals the concatenated output_text parts',
    'supported',
    [BLOCKING, SDK_STREAM],
  ),
  item(
    12,
    'responses.object.message_items',
    'Assistant message items: msg_ id, status, output_text parts',
    'supported',
    [BLOCKING],
  ),
  item(13, 'responses.object.instructions', 'instructions echoed as given, or null', 'supported', [ECHOES]),
  item(
    14,
    'responses.object.tools_echo',
    'tools and tool_choice echoed (defaults [] and auto)',
    'supported',
    [
      BLOCKING,
      t(TOOLS, 'returns a function_call item and offers the backend the tool (58, 59, 60)'),
      t(TOOLS, 'allowed_tools: only the listed tools are offered and accepted (64)'),
    ],
  ),
  item(15, 'responses.object.parallel_tool_calls', 'parallel_tool_calls defaults to true', 'supported', [
    BLOCKING,
  ]),
  item(16, 'responses.object.store', 'store defaults to true', 'supported', [BLOCKING]),
  item(17, 'responses.object.text', 'text defaults to format text, verbosity medium', 'supported', [
    BLOCKING,
  ]),
  item(18, 'responses.object.truncation', 'truncation defaults to disabled', 'supported', [BLOCKING]),
  item(19, 'responses.retrieve', 'GET /v1/responses/{id} returns the stored response', 'supported', [
    RETRIEVE_DELETE,
  ]),
  item(20, 'responses.retrieve.unknown', 'GET of an unknown id is a 404 envelope', 'supported', [
    RETRIEVE_DELETE,
  ]),
  item(21, 'responses.delete', 'DELETE returns {id, object, deleted:true}; GET is then 404', 'supported', [
    RETRIEVE_DELETE,
  ]),
  item(22, 'responses.delete.unknown', 'DELETE of an unknown id is a 404 envelope', 'supported', [
    RETRIEVE_DELETE,
  ]),
  item(
    23,
    'responses.input_items',
    'input_items list shape (data, first_id, last_id, has_more)',
    'supported',
    [INPUT_ITEMS],
  ),
  item(
    24,
    'query.include_arrays',
    'Query arrays in brackets form (include[]=…) and repeated form',
    'supported',
    [INPUT_ITEMS],
  ),
  item(
    25,
    'responses.input_items.order',
    'input_items newest first by default; order=asc reverses',
    'supported',
    [INPUT_ITEMS],
  ),
  item(26, 'responses.input_items.paging', 'limit and after page through input items', 'supported', [
    INPUT_ITEMS,
  ]),
  item(
    27,
    'responses.input_items.limit',
    'limit outside 1–100 is a 400 naming limit (never clamped)',
    'supported',
    [INPUT_ITEMS],
  ),
  item(28, 'responses.input_items.cursors', 'first_id and last_id match the page', 'supported', [
    INPUT_ITEMS,
  ]),
  unsupported(
    29,
    'responses.input_tokens',
    'POST /v1/responses/input_tokens',
    missingEndpoint('POST', '/v1/responses/input_tokens', { model: 'm', input: 'x' }),
  ),
  unsupported(
    30,
    'responses.compact',
    'POST /v1/responses/compact',
    missingEndpoint('POST', '/v1/responses/compact', { model: 'm', input: 'x' }),
  ),
  item(31, 'models.list', 'GET /v1/models aggregates every backend and configured aliases', 'supported', [
    t(MODELS, 'lists every backend model and the configured aliases (31)'),
  ]),
  item(
    32,
    'models.retrieve',
    'GET /v1/models/{id} (slashes allowed); unknown ids are 404 model_not_found',
    'supported',
    [t(MODELS, 'retrieves one model, with slashes in its id, and 404s unknown ones (32)')],
  ),

  // Request validation
  unsupported(
    33,
    'validation.conversation_with_previous_response',
    'conversation (with or without previous_response_id)',
    refusedParam('conversation', { conversation: 'conv_1', previous_response_id: 'resp_1' }),
    'Refused whenever conversation is given: the Conversations API is not available.',
  ),
  item(34, 'validation.max_output_tokens.minimum', 'max_output_tokens below 16 is a 400', 'supported', [
    VALIDATION,
  ]),
  item(35, 'validation.max_output_tokens.type', 'A non-integer max_output_tokens is a 400', 'supported', [
    VALIDATION,
  ]),
  item(36, 'validation.model_not_found', 'An unknown model is a 404 model_not_found', 'supported', [
    t(MODELS, 'is a 404 model_not_found without calling any backend (36)'),
    BACKEND_REFUSALS,
  ]),
  item(
    37,
    'validation.metadata',
    'metadata over 16 pairs, 64-char keys or 512-char values is a 400',
    'supported',
    [VALIDATION],
  ),
  item(
    38,
    'validation.sampling_ranges',
    'temperature, top_p and top_logprobs out of range are 400s',
    'supported',
    [VALIDATION],
  ),
  item(
    39,
    'validation.json_schema_fields',
    'A json_schema format without name or schema is a 400',
    'supported',
    [VALIDATION],
  ),
  item(
    40,
    'validation.previous_response_not_found',
    'Chaining onto an unknown or unstored response is a 400',
    'supported',
    [UNSTORED],
  ),
  item(
    41,
    'validation.tool_output_without_call',
    'A function_call_output matching no call is a 400 naming input',
    'supported',
    [
      t(TOOL_HISTORY, 'refuses a function_call_output whose call_id matches no call (41)'),
      t(
        TOOLS,
        'refuses an output for an unknown call_id, and re-sent chain items, with 400 naming input (41, 42)',
      ),
    ],
  ),
  item(42, 'validation.duplicate_item', 'Re-sending an item already in the chain is a 400', 'supported', [
    t(RESPONSES, 'rejects re-sending an item already in the chain (42)'),
    t(
      TOOLS,
      'refuses an output for an unknown call_id, and re-sent chain items, with 400 naming input (41, 42)',
    ),
  ]),
  unsupported(
    43,
    'validation.compaction_trigger',
    'compaction_trigger items (compaction)',
    refusedParam('context_management', { context_management: [{ type: 'compaction' }] }),
    'Server-side compaction is not available; context_management is refused.',
  ),
  item(
    44,
    'validation.unknown_parameter',
    'An unknown top-level field is a 400 unknown_parameter',
    'supported',
    [VALIDATION],
  ),
  item(45, 'errors.envelope', 'Every error is the envelope with message, type, param and code', 'supported', [
    VALIDATION,
    t(ERRORS, 'rejects malformed JSON'),
  ]),
  item(46, 'errors.request_id', 'x-request-id on every response; a caller-given one is kept', 'supported', [
    t(RESPONSES, 'keeps a caller-given x-request-id and adds one otherwise (46)'),
  ]),
  item(47, 'errors.retry_after', '429s carry Retry-After (and retry-after-ms, x-ratelimit-*)', 'supported', [
    t(
      LIMITS,
      'sends x-ratelimit headers on successes and errors, a 429 with Retry-After when over, and recovers',
    ),
  ]),
  item(48, 'errors.no_retryable_client_errors', 'Client mistakes are never 408/409/429/5xx', 'supported', [
    t(ERRORS, 'never answers a client mistake with a status the SDKs retry (48)'),
  ]),

  // Input handling
  item(
    49,
    'input.parts',
    'input_text and input_image (https or data: URL) parts',
    'conditional',
    [
      t(INPUTS, 'passes a data: URL image in the backend format (49, 50)'),
      t(INPUTS, 'downloads http(s) images for Ollama and leaves them to chat servers'),
    ],
    {
      condition:
        'Images need a model that accepts them; input_image by file_id and input_file are refused (Files API).',
    },
  ),
  item(
    50,
    'input.image_detail',
    'input_image without detail is accepted',
    'conditional',
    [t(INPUTS, 'passes a data: URL image in the backend format (49, 50)')],
    { condition: 'The model must accept images.' },
  ),
  item(51, 'input.system_developer', 'system and developer messages become instructions', 'supported', [
    ITEM_LISTS,
  ]),
  item(
    52,
    'input.assistant_messages',
    'Assistant messages as strings and as output_text parts',
    'supported',
    [ITEM_LISTS],
  ),
  item(
    53,
    'input.replayed_output_items',
    'Output items of an earlier response fed back verbatim',
    'supported',
    [
      ITEM_LISTS,
      t(TOOLS, 'completes a round trip by full replay, with an output of content parts, streamed (53, 54)'),
      t(REASONING, 'resolves reasoning and function calls of a previous response from the store (53, 55)'),
    ],
  ),
  item(
    54,
    'input.tool_outputs',
    'function_call_output as a string or input_text parts',
    'supported',
    [
      t(TOOL_HISTORY, 'accepts function_call_output as a string and as input_text parts (54)'),
      t(TOOLS, 'completes a round trip by full replay, with an output of content parts, streamed (53, 54)'),
    ],
    {
      note: 'input_file parts, and images by file_id, in a tool output are refused (input.tool_output_files).',
    },
  ),
  item(
    55,
    'input.item_reference',
    "item_reference resolves the tenant's stored item; unknown ids are 404",
    'supported',
    [
      t(RESPONSES, 'resolves item_reference from the store, and 404s an unknown one (55)'),
      t(REASONING, 'resolves reasoning and function calls of a previous response from the store (53, 55)'),
    ],
  ),
  item(
    56,
    'input.reasoning_by_id',
    'A reasoning item sent by id only is resolved; unknown ids are 404',
    'supported',
    [t(INPUTS, 'resolves a reasoning item sent back by id only, and 404s one that was never stored (56)')],
  ),
  item(57, 'input.phase', 'phase on assistant messages is kept', 'supported', [ITEM_LISTS]),

  // Tools
  item(
    58,
    'tools.function.call_items',
    'A function tool produces a completed function_call item (fc_ id, call_id, name, arguments)',
    'supported',
    [
      t(TOOLS, 'returns a function_call item and offers the backend the tool (58, 59, 60)'),
      t('test/e2e/agents-sdk.test.ts', 'runs a function tool and answers'),
    ],
    { note: TOOL_MODEL_NOTE },
  ),
  item(
    59,
    'tools.function.arguments_json',
    'function_call.arguments always a JSON string',
    'supported',
    [
      t(TOOLS, 'returns a function_call item and offers the backend the tool (58, 59, 60)'),
      t(TOOLS, 'passes non-strict arguments that do not fit the schema, but never invalid JSON'),
    ],
    { note: 'Arguments that are not valid JSON are retried once, then the response fails; never returned.' },
  ),
  item(
    60,
    'tools.function.strict',
    'Strict function schemas (strict true, null or omitted): arguments validate against the schema',
    'supported',
    [
      t(TOOLS, 'returns a function_call item and offers the backend the tool (58, 59, 60)'),
      t(
        TOOLS,
        'accepts schemas with $schema, $defs, definitions, nullable unions and strict null, and checks them (60)',
      ),
      t(
        TOOLS,
        'fails a strict call whose arguments stay invalid, blocking (502) and streamed, never returning them',
      ),
      t(
        ENGINE_TOOLS,
        'treats strict true, null and omitted as strict, and falls back to best effort only when implicit',
      ),
    ],
    {
      note: 'The schema is sent to the backend and checked by Ferry (ajv); an implicitly strict schema Ferry cannot compile falls back to best effort, an explicitly strict one is a 400.',
    },
  ),
  item(61, 'tools.tool_choice.none', "tool_choice 'none' produces no tool-call items", 'supported', [
    t(TOOLS, "'none': the backend is told, and a model calling anyway is asked again (61)"),
  ]),
  item(
    62,
    'tools.tool_choice.required',
    "tool_choice 'required' produces at least one tool call (or the response fails)",
    'supported',
    [
      t(TOOLS, "'required': text instead of a call is held back and asked again, streamed (62)"),
      t(TOOLS, "'required': a model that never calls fails the response, blocking and streamed"),
    ],
    { note: TOOL_MODEL_NOTE },
  ),
  item(
    63,
    'tools.tool_choice.function',
    'tool_choice naming a function produces a call to it',
    'supported',
    [
      t(
        TOOLS,
        'a forced function: only it is offered to Ollama, chat servers are told; another call is refused (63)',
      ),
    ],
    { note: TOOL_MODEL_NOTE },
  ),
  item(
    64,
    'tools.tool_choice.allowed_tools',
    'tool_choice allowed_tools never yields calls outside the list',
    'supported',
    [t(TOOLS, 'allowed_tools: only the listed tools are offered and accepted (64)')],
  ),
  item(
    65,
    'tools.parallel_tool_calls',
    'parallel_tool_calls false yields at most one call',
    'supported',
    [t(TOOLS, 'keeps at most one call with parallel_tool_calls false, and max_tool_calls calls (65)')],
    { note: 'Calls beyond the first are dropped (chat servers are also sent parallel_tool_calls false).' },
  ),
  item(
    66,
    'tools.multiple_calls',
    'Several tool calls in one turn as separate items (distinct output_index, id, call_id)',
    'supported',
    [t(TOOLS, 'emits parallel calls as separate items one after another (66, d)')],
  ),
  item(
    67,
    'tools.round_trip',
    'The function-call round trip (previous_response_id or full replay) ends with a message',
    'supported',
    [
      t(TOOLS, 'completes a round trip with function_call_output by previous_response_id (67, 54)'),
      t(TOOLS, 'completes a round trip by full replay, with an output of content parts, streamed (53, 54)'),
    ],
  ),
  item(
    68,
    'tools.custom',
    'Custom (freeform) tools produce custom_tool_call items; grammar formats',
    'conditional',
    [
      t(TOOLS, 'maps a custom tool onto a one-string function and returns custom_tool_call items (68)'),
      t(TOOLS, 'checks a regex grammar, asking again when the input does not match'),
      t(
        ENGINE_TOOLS,
        'unwraps custom tool input, also under another property name, and checks regex grammars',
      ),
      t(ENGINE_TOOLS, 'shows a Lark grammar to the model but does not check the input against it'),
    ],
    {
      condition:
        'Free text and regex grammars work everywhere (Ferry checks the regex; servers with JSON-schema grammars also constrain decoding). A Lark grammar is only shown to the model: no backend decodes it and Ferry does not check it.',
      note: 'The model sees a function with one string argument, input.',
    },
  ),
  unsupported(
    69,
    'tools.hosted',
    'Hosted tools (web_search_preview, file_search, code_interpreter, image_generation, mcp, shell, computer use…)',
    refusedParam('tools[0].type', { tools: [{ type: 'web_search_preview' }] }),
    'A 400 naming tools[i].type: Ferry runs no tools. web_search alone is accepted and left out (see tools.web_search).',
    [HOSTED_TOOLS, VALIDATION, t(ENGINE_TOOLS, 'refuses hosted tools by index, but drops web_search')],
  ),

  // Structured output, sampling, reasoning
  item(
    70,
    'output.json_schema',
    "text.format 'json_schema' yields text that parses and, when strict, validates against the schema",
    'supported',
    [
      t(STRUCTURED, 'parses a zod format with responses.parse(), and asks the backend for the schema (70)'),
      t(STRUCTURED, 'streams a zod format through responses.stream() and finalResponse()'),
      t(STRUCTURED, 'repairs a schema mismatch in a stream without showing the client the bad answer'),
      t(STRUCTURED, 'fails rather than return invalid JSON as completed, blocking and streamed'),
      t(STRUCTURED, 'takes a schema as a hint with strict false: valid JSON that does not fit passes'),
    ],
    {
      note: 'The schema constrains decoding on the backend (Ollama format, response_format) and Ferry checks the text; one repair attempt, then the response fails (invalid_json_output). A cut-off answer ends incomplete, unchecked.',
    },
  ),
  item(71, 'output.json_object', "text.format 'json_object' yields valid JSON", 'supported', [
    t(STRUCTURED, 'passes json_object to the backend and returns valid JSON (71)'),
    t(STRUCTURED, 'repairs invalid JSON once: the model sees its answer and what was wrong (blocking)'),
  ]),
  item(72, 'output.max_output_tokens', 'max_output_tokens exhaustion ends incomplete', 'supported', [
    INCOMPLETE,
  ]),
  unsupported(
    73,
    'output.logprobs',
    "include 'message.output_text.logprobs' (and top_logprobs above 0)",
    refusedParam('include', { include: ['message.output_text.logprobs'] }),
    'Backends do not report log probabilities through Ferry.',
    [VALIDATION],
  ),
  item(
    74,
    'output.reasoning_encrypted_content',
    "include 'reasoning.encrypted_content' seals reasoning items; sent back, they are restored for the model",
    'conditional',
    [
      SEALED_REASONING,
      t(REASONING, 'refuses tampered and foreign encrypted_content with a 400 naming the item'),
      t('test/engine/reasoning-cipher.test.ts', 'refuses any changed byte, other keys, and garbage'),
    ],
    {
      condition:
        "The backend must pass the model's thinking (Ollama thinking, reasoning_content or reasoning on chat servers); without it there is no reasoning item to seal.",
      note: "Sealed with Ferry's key (shared by replicas through the database); a blob that does not open is a 400 naming the item.",
    },
  ),
  item(
    75,
    'reasoning.effort',
    'reasoning.effort values accepted (unsupported ones a 400 naming reasoning.effort) and passed to the backend',
    'conditional',
    [
      t(
        REASONING,
        "follows a model's configured levels, and refuses others with a 400 naming reasoning.effort (75)",
      ),
      t(REASONING, 'maps every level to the backend setting when the model has no configuration'),
      t(
        'test/backends/ollama.test.ts',
        'maps reasoning effort none to think:false, json_object to format "json", and drops tools for tool_choice none',
      ),
      t(
        'test/backends/openai-chat.test.ts',
        'sends usage options, limits, format, reasoning effort, tools, images and tool history',
      ),
    ],
    {
      condition:
        'The model must support reasoning control (Ollama think, reasoning_effort or chat_template_kwargs on chat servers). Without configured levels every value is accepted and mapped; with models.<name>.reasoning.efforts others are a 400.',
    },
  ),
  item(
    76,
    'reasoning.items',
    'Model thinking becomes a reasoning item before the message (summary [] unless asked for)',
    'conditional',
    [
      REASONING_STREAM,
      t(REASONING, 'returns the same items in a blocking response, without a summary unless asked for'),
      SDK_STREAM,
      t('test/engine/response-builder.test.ts', 'puts reasoning in its own item before the message'),
    ],
    {
      condition:
        "The backend must pass the model's thinking (Ollama thinking, reasoning_content or reasoning on chat servers).",
    },
  ),
  item(
    77,
    'reasoning.summary',
    'reasoning.summary requested gives the reasoning item a summary_text',
    'conditional',
    [
      REASONING_STREAM,
      t(REASONING, 'returns the same items in a blocking response, without a summary unless asked for'),
    ],
    {
      condition: "The backend must pass the model's thinking.",
      note: 'Local models write no separate summary: the summary is the reasoning text itself (what Codex, which shows only summaries, needs).',
    },
  ),

  // Streaming
  item(78, 'stream.content_type', 'stream:true answers text/event-stream', 'supported', [STREAM_ORDER]),
  item(79, 'stream.frames', 'Every frame has event: equal to data.type', 'supported', [STREAM_ORDER]),
  item(80, 'stream.whole_frames', 'Each frame is written whole', 'supported', [STREAM_ORDER]),
  item(81, 'stream.sequence_numbers', 'sequence_number from 0, +1 per event', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(
    82,
    'stream.created_first',
    'response.created first, in_progress, empty output, null usage',
    'supported',
    [STREAM_ORDER, STREAM_CHECKER],
  ),
  item(83, 'stream.in_progress_second', 'response.in_progress second', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(84, 'stream.one_terminal_event', 'Exactly one terminal event, last', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(85, 'stream.terminal_snapshot', 'The terminal event carries the full output and usage', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(86, 'stream.snapshot_equals_stored', 'The terminal snapshot equals a later GET', 'supported', [
    STREAM_ORDER,
  ]),
  item(87, 'stream.same_id', 'The same response id in every lifecycle event', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(88, 'stream.output_indexes', 'output_index 0, 1, 2… without gaps', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(89, 'stream.item_done', 'Every output_item.added has its output_item.done', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(90, 'stream.message_events', 'Message items: content_part.added → deltas → done events', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(91, 'stream.delta_concatenation', 'Deltas concatenate to the done text everywhere', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(
    92,
    'stream.item_ids',
    'Item events carry the right item_id, output_index, content_index',
    'supported',
    [STREAM_ORDER, STREAM_CHECKER],
  ),
  item(93, 'stream.delta_logprobs', 'output_text.delta carries logprobs (an empty array)', 'supported', [
    STREAM_ORDER,
    STREAM_CHECKER,
  ]),
  item(
    94,
    'stream.function_call_events',
    'Function calls stream: added (empty arguments) → argument deltas → done (arguments, name) → item done',
    'supported',
    [
      TOOL_STREAM,
      t('test/e2e/langchain.test.ts', 'completes a tool round trip, streamed'),
      t(
        'test/engine/response-builder.test.ts',
        'synthesises argument deltas for a whole tool call and drops blank text before it',
      ),
    ],
    {
      note: 'Chat servers stream argument fragments; a call that arrives whole (Ollama) or is checked first (strict) goes out as one delta.',
    },
  ),
  item(95, 'stream.function_call_deltas', 'Argument deltas concatenate to the done arguments', 'supported', [
    TOOL_STREAM,
    STREAM_CHECKER,
    t(
      'test/engine/response-builder.test.ts',
      'keeps interleaved argument fragments on the right call and emits the calls one after another',
    ),
  ]),
  item(
    96,
    'stream.reasoning_text',
    'Raw reasoning streams as reasoning_text parts inside a reasoning item',
    'conditional',
    [
      REASONING_STREAM,
      t('test/backends/ollama.test.ts', 'turns thinking lines into reasoning deltas ahead of the answer'),
      t('test/backends/openai-chat.test.ts', 'streams reasoning as reasoning deltas before the answer'),
    ],
    { condition: "The backend must pass the model's thinking." },
  ),
  item(
    97,
    'stream.reasoning_summary',
    'Reasoning summary events (summary_part.added → summary_text.delta → done → part.done)',
    'conditional',
    [REASONING_STREAM],
    {
      condition: "The backend must pass the model's thinking, and reasoning.summary must be asked for.",
      note: 'The summary text is the reasoning itself, sent as one delta after the reasoning text.',
    },
  ),
  item(98, 'stream.failure', 'A failure after the first byte is error + response.failed', 'supported', [
    MID_STREAM,
    t(LIMITS, 'a stream that goes silent mid-way: error + response.failed naming timeouts.idleMs'),
  ]),
  item(99, 'stream.no_error_key', 'No non-error event carries a top-level error key', 'supported', [
    MID_STREAM,
    STREAM_CHECKER,
  ]),
  item(
    100,
    'stream.errors_before_first_byte',
    'Errors on stream:true before any event are plain JSON',
    'supported',
    [BACKEND_REFUSALS],
  ),
  item(101, 'stream.incomplete', 'Incomplete streams end with response.incomplete', 'supported', [
    INCOMPLETE,
  ]),
  item(
    102,
    'stream.obfuscation',
    'No obfuscation on deltas; stream_options.include_obfuscation accepted',
    'supported',
    [t(FIELDS, 'never puts obfuscation padding on delta events, whatever stream_options says (102)')],
  ),
  item(
    103,
    'stream.known_event_types',
    'Only documented event types (plus SSE keep-alive comments)',
    'supported',
    [STREAM_ORDER, STREAM_CHECKER, t(FIELDS, 'sends SSE keep-alive comments while a stream is quiet')],
  ),
  item(
    104,
    'stream.sdk_final_response',
    'responses.stream().finalResponse() resolves with the streamed text',
    'supported',
    [SDK_STREAM],
  ),
  item(
    105,
    'stream.client_disconnect',
    'A client leaving a stream aborts the backend; stored cancelled',
    'supported',
    [
      t(
        RESPONSES,
        'aborts the backend request when a streaming client disconnects, and stores it cancelled (105)',
      ),
    ],
  ),

  // Background, cancel, resume
  item(
    106,
    'background.queued',
    'background:true answers queued at once (output [], usage null)',
    'supported',
    [BACKGROUND_POLL],
  ),
  item(107, 'background.polling', 'Polling a background response to its end', 'supported', [BACKGROUND_POLL]),
  item(
    108,
    'background.cancel',
    'Cancelling a queued or running background response: cancelled, and it stays so',
    'supported',
    [
      t(
        BACKGROUND,
        'cancels a running response: partial output kept, backend aborted, cancelled stays (108)',
      ),
      t(BACKGROUND, 'cancels a queued response before it reaches the backend (108)'),
      t(
        BACKGROUND,
        'ends the event stream of a cancelled queued response with response.failed (status cancelled)',
      ),
    ],
    {
      note: 'A running response keeps its partial output. The Responses API has no response.cancelled event: the event stream of a cancelled response ends with response.failed whose response has status cancelled (tested for a queued one).',
    },
  ),
  item(
    109,
    'background.cancel_terminal',
    'Cancelling a finished background response returns it unchanged (idempotent)',
    'supported',
    [
      t(BACKGROUND, 'returns a finished background response unchanged when it is cancelled (109)'),
      t(
        BACKGROUND,
        'cancels a running response: partial output kept, backend aborted, cancelled stays (108)',
      ),
    ],
  ),
  item(110, 'cancel.non_background', 'Cancelling a non-background response is a 400 (not 409)', 'supported', [
    CANCEL,
  ]),
  item(111, 'cancel.unknown', 'Cancelling an unknown id is a 404', 'supported', [CANCEL]),
  item(
    112,
    'background.stream',
    'background:true with stream:true: created(queued) → queued → in_progress → … → terminal',
    'supported',
    [BACKGROUND_STREAM],
  ),
  item(
    113,
    'background.replay',
    'GET ?stream=true replays a background stream from the start, byte for byte',
    'supported',
    [BACKGROUND_STREAM],
  ),
  item(
    114,
    'background.starting_after',
    'GET ?stream=true&starting_after=N sends only later events',
    'supported',
    [BACKGROUND_STREAM, BACKGROUND_RESUME],
  ),
  item(
    115,
    'background.replay_live',
    'Replay while running continues live; after the end it stops at the terminal event',
    'supported',
    [BACKGROUND_RESUME],
  ),
  item(116, 'background.survives_disconnect', 'A background run outlives its client', 'supported', [
    BACKGROUND_RESUME,
  ]),
  item(
    117,
    'retrieve.stream_without_event_log',
    'GET ?stream=true without an event log is a 400 naming stream',
    'supported',
    [t(BACKGROUND, 'rejects a stream request for a response without an event log (117)'), CANCEL],
  ),

  // State
  item(118, 'store.false', 'store:false responses are 404 on GET and cannot be chained', 'supported', [
    UNSTORED,
  ]),
  item(119, 'previous_response_id.context', 'previous_response_id makes earlier turns visible', 'supported', [
    CHAINS,
    t(
      'test/store/conformance.test.ts',
      'loads a whole previous_response_id chain in order, skipping deleted links',
    ),
  ]),
  item(120, 'previous_response_id.echo', 'previous_response_id echoed', 'supported', [CHAINS]),
  item(
    121,
    'previous_response_id.instructions',
    'Instructions are not inherited through the chain',
    'supported',
    [CHAINS],
  ),
  item(
    122,
    'previous_response_id.usage',
    "A chained turn's input tokens include the earlier turns",
    'supported',
    [CHAINS],
  ),
  unsupported(123, 'conversations.create', 'POST /v1/conversations', CONVERSATIONS),
  unsupported(124, 'conversations.max_items', 'POST /v1/conversations with 21 items is a 400', CONVERSATIONS),
  unsupported(
    125,
    'conversations.responses',
    'Responses in a conversation',
    refusedParam('conversation', { conversation: 'conv_1' }),
  ),
  unsupported(
    126,
    'conversations.echo',
    'conversation echoed on the Response',
    refusedParam('conversation', { conversation: { id: 'conv_1' } }),
  ),
  unsupported(
    127,
    'conversations.update',
    'POST /v1/conversations/{id}',
    missingEndpoint('POST', '/v1/conversations/conv_1', { metadata: {} }),
  ),
  unsupported(
    128,
    'conversations.delete',
    'DELETE /v1/conversations/{id}',
    missingEndpoint('DELETE', '/v1/conversations/conv_1'),
  ),
  unsupported(
    129,
    'conversations.delete_item',
    'DELETE /v1/conversations/{id}/items/{item_id}',
    missingEndpoint('DELETE', '/v1/conversations/conv_1/items/msg_1'),
  ),
  unsupported(
    130,
    'conversations.list_items',
    'GET /v1/conversations/{id}/items',
    missingEndpoint('GET', '/v1/conversations/conv_1/items'),
  ),

  // Files, embeddings, chat
  unsupported(131, 'files.upload', 'POST /v1/files', FILES),
  unsupported(132, 'files.purpose', 'POST /v1/files with an invalid purpose is a 400', FILES),
  unsupported(
    133,
    'files.content',
    'GET /v1/files/{id}/content',
    missingEndpoint('GET', '/v1/files/file-1/content'),
  ),
  unsupported(134, 'files.list', 'GET /v1/files', missingEndpoint('GET', '/v1/files')),
  unsupported(135, 'files.delete', 'DELETE /v1/files/{id}', missingEndpoint('DELETE', '/v1/files/file-1')),
  unsupported(
    136,
    'files.input_file',
    'input_file parts and input_image by file_id',
    refusedParam('input[0].content[0]', {
      input: [{ role: 'user', content: [{ type: 'input_file', file_data: 'eA==', filename: 'x.txt' }] }],
    }),
    'Needs the Files API; file_url and file_data are refused too (also inside tool outputs).',
    [VALIDATION],
  ),
  unsupported(137, 'embeddings.create', 'POST /v1/embeddings (float and base64)', EMBEDDINGS),
  unsupported(138, 'embeddings.shape', 'The embeddings list shape', EMBEDDINGS),
  unsupported(139, 'embeddings.empty_input', 'POST /v1/embeddings with an empty input is a 400', EMBEDDINGS),
  unsupported(140, 'chat.completions', 'POST /v1/chat/completions', CHAT),
  unsupported(141, 'chat.stream', 'Chat Completions streaming with [DONE]', CHAT),
  unsupported(142, 'chat.stream_tool_calls', 'Chat Completions streamed tool calls', CHAT),
  unsupported(143, 'chat.finish_reason', 'A finish_reason on every streamed chat choice', CHAT),
  unsupported(144, 'chat.include_usage', 'stream_options.include_usage on Chat Completions', CHAT),
];

/** What Ferry adds or refuses beyond the checklist: request features, backends, access, operations. */
const GATEWAY: Feature[] = [
  {
    id: 'responses.truncation',
    area: 'input',
    title:
      "truncation 'disabled' refuses an input over the context window (400); 'auto' drops the oldest turns",
    status: 'supported',
    tests: [
      t(
        RESPONSES,
        'refuses an input over the context window with truncation disabled, and drops old turns with auto (6.5)',
      ),
    ],
  },
  {
    id: 'input.audio',
    area: 'input',
    title: 'input_audio parts',
    status: 'unsupported',
    tests: [REFUSED],
    probe: refusedParam('input[0].content[0]', {
      input: [
        { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'eA==', format: 'wav' } }] },
      ],
    }),
  },
  {
    id: 'input.image_file_id',
    area: 'input',
    title: 'input_image by file_id',
    status: 'unsupported',
    note: 'Needs the Files API.',
    tests: [REFUSED, VALIDATION],
    probe: refusedParam('input[0].content[0]', {
      input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }],
    }),
  },
  {
    id: 'output.top_logprobs',
    area: 'output',
    title: 'top_logprobs above 0',
    status: 'unsupported',
    note: 'Backends do not report log probabilities through Ferry.',
    tests: [REFUSED],
    probe: refusedParam('top_logprobs', { top_logprobs: 3 }),
  },
  {
    id: 'responses.prompt',
    area: 'responses',
    title: 'Stored prompt templates (prompt)',
    status: 'unsupported',
    tests: [REFUSED, VALIDATION],
    probe: refusedParam('prompt', { prompt: { id: 'pmpt_1' } }),
  },
  {
    id: 'responses.moderation',
    area: 'responses',
    title: 'moderation',
    status: 'unsupported',
    tests: [REFUSED],
    probe: refusedParam('moderation', { moderation: { enabled: true } }),
  },
  {
    id: 'responses.websocket',
    area: 'responses',
    title: 'Responses over WebSocket (GET /v1/responses upgrade)',
    status: 'unsupported',
    note: 'A WebSocket upgrade gets 426 websocket_not_supported at once, so clients (Codex) fall back to HTTP + SSE; without an upgrade GET /v1/responses is an unknown URL (404).',
    tests: [
      REFUSED,
      t(
        CODEX_WIRE,
        'answers a WebSocket upgrade on /v1/responses with 426 at once, so Codex falls back to HTTP',
      ),
    ],
    probe: missingEndpoint('GET', '/v1/responses'),
  },
  {
    id: 'input.tool_output_files',
    area: 'input',
    title: 'input_file (or input_image by file_id) parts in a tool output',
    status: 'unsupported',
    note: 'Needs the Files API; text and image_url parts in tool outputs are accepted.',
    tests: [REFUSED, VALIDATION],
    probe: refusedParam('input[1].output[0]', {
      input: [
        { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{}' },
        {
          type: 'function_call_output',
          call_id: 'call_1',
          output: [{ type: 'input_file', file_data: 'eA==', filename: 'x.txt' }],
        },
      ],
    }),
  },
  {
    id: 'sampling.penalties',
    area: 'output',
    title: 'presence_penalty and frequency_penalty are forwarded to the backend and echoed',
    status: 'supported',
    note: "Sent as Ollama options and in the chat-server request; whether and how the backend's sampler applies them depends on the backend.",
    tests: [ECHOES, ECHO_ONLY],
  },
  {
    id: 'responses.platform_fields',
    area: 'responses',
    title: 'user, safety_identifier, prompt_cache_key, prompt_cache_retention, service_tier, text.verbosity',
    status: 'echoed',
    note: 'OpenAI platform settings with no self-hosted equivalent: echoed, never sent to the backend.',
    tests: [ECHOES, ECHO_ONLY],
  },
  {
    id: 'responses.accepted_fields',
    area: 'responses',
    title: 'client_metadata (Codex), prompt_cache_options, reasoning.mode and reasoning.context',
    status: 'supported',
    note: 'Accepted so the clients that send them keep working, with no effect and not echoed (the Response object has no place for them); nothing reaches the backend.',
    tests: [
      t(
        FIELDS,
        'accepts client_metadata, prompt_cache_options, reasoning.mode and reasoning.context, echoing none of them',
      ),
    ],
  },
  {
    id: 'tools.web_search',
    area: 'tools',
    title: 'web_search tools (Codex sends one on every request)',
    status: 'echoed',
    note: 'Accepted and echoed in tools, but left out of the tools the model is offered (Ferry runs no search); a warning is logged the first time. Other hosted tools are refused (tools.hosted).',
    tests: [
      t(TOOLS, 'accepts web_search (Codex always sends it), leaves it out for the model, and logs a warning'),
      t(ENGINE_TOOLS, 'refuses hosted tools by index, but drops web_search'),
    ],
  },
  {
    id: 'tools.tool_choice.hosted',
    area: 'tools',
    title: 'tool_choice forcing a hosted tool',
    status: 'unsupported',
    tests: [REFUSED, UNHONOURABLE_CHOICES],
    probe: refusedParam('tool_choice', { tools: A_FUNCTION_TOOL, tool_choice: { type: 'file_search' } }),
  },
  {
    id: 'tools.allowed_tools.hosted',
    area: 'tools',
    title: 'tool_choice allowed_tools listing a hosted tool',
    status: 'unsupported',
    tests: [REFUSED, UNHONOURABLE_CHOICES],
    probe: refusedParam('tool_choice.tools[0]', {
      tools: A_FUNCTION_TOOL,
      tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'mcp' }] },
    }),
  },
  {
    id: 'tools.tool_choice.unknown_tool',
    area: 'tools',
    title: 'A tool_choice that cannot be honoured (no tools, an undeclared tool) is a 400 naming it',
    status: 'supported',
    tests: [UNHONOURABLE_CHOICES, t(ENGINE_TOOLS, 'refuses a forced tool of the wrong kind or name')],
  },
  {
    id: 'tools.namespace',
    area: 'tools',
    title: 'Namespace tools (Codex): flattened for the backend, calls carry their namespace back',
    status: 'supported',
    note: 'Tools that would flatten to the same name are a 400 (duplicate_tool_name).',
    tests: [
      t(TOOLS, 'flattens namespace tools for the backend and gives calls their namespace back'),
      t(TOOLS, 'refuses two tools that flatten to one name, naming the second'),
      t(ENGINE_TOOLS, 'flattens namespaces reversibly and refuses collisions'),
    ],
  },
  {
    id: 'tools.max_tool_calls',
    area: 'tools',
    title: 'max_tool_calls caps the calls of a response (later calls are dropped)',
    status: 'supported',
    tests: [
      t(TOOLS, 'keeps at most one call with parallel_tool_calls false, and max_tool_calls calls (65)'),
      t(OUTPUT_GUARD, 'drops calls beyond the limit, and their parts'),
    ],
  },
  {
    id: 'tools.rule_enforcement',
    area: 'tools',
    title:
      "Tool rules enforced on the model's answer: undeclared or disallowed tools, strict arguments, tool_choice — asked again once, then the response fails",
    status: 'supported',
    note: 'A blocking request gets a 502 (invalid_tool_call or tool_choice_violation), a stream error + response.failed; whatever still needs checking is held back from the client until it passes.',
    tests: [
      t(TOOLS, 'asks again when the model calls a tool it was not given, and fails if it persists'),
      t(
        TOOLS,
        'fails a strict call whose arguments stay invalid, blocking (502) and streamed, never returning them',
      ),
      t(TOOLS, "'required': a model that never calls fails the response, blocking and streamed"),
      t(TOOLS, 'a retried stream keeps the reasoning it already showed, in an item of its own'),
      t(
        OUTPUT_GUARD,
        'holds a strict call, and whatever follows it, until its arguments pass; then sends it whole',
      ),
      t(
        OUTPUT_GUARD,
        "stops at the first call under 'none', to an unknown tool, or to one the choice leaves out",
      ),
    ],
  },
  {
    id: 'tools.context_window',
    area: 'tools',
    title: 'Tool definitions count against the context window',
    status: 'supported',
    tests: [t(TOOLS, 'counts tool definitions against the context window')],
  },
  {
    id: 'output.json_schema.invalid',
    area: 'output',
    title: 'A strict json_schema Ferry cannot compile is a 400 naming text.format.schema',
    status: 'supported',
    tests: [t(STRUCTURED, 'refuses a strict schema it cannot compile, naming text.format.schema')],
  },
  {
    id: 'reasoning.history',
    area: 'reasoning',
    title:
      "Earlier reasoning goes back to the model: chained, by id, sealed or replayed verbatim, in the backend's own field",
    status: 'conditional',
    condition: "The backend must pass the model's thinking (there is none to send back otherwise).",
    tests: [
      t(REASONING, 'resolves reasoning and function calls of a previous response from the store (53, 55)'),
      SEALED_REASONING,
    ],
  },
  {
    id: 'reasoning.usage',
    area: 'reasoning',
    title: 'output_tokens_details.reasoning_tokens',
    status: 'conditional',
    condition: 'The backend must report reasoning tokens (LM Studio does); otherwise 0.',
    tests: [t(REASONING, 'fills output_tokens_details.reasoning_tokens where the backend reports it')],
  },
  {
    id: 'reasoning.keys',
    area: 'reasoning',
    title:
      'The key sealing encrypted_content: configured or generated once and shared through the database; rotated-out keys still open',
    status: 'supported',
    tests: [
      t(REASONING, 'shares a generated key through the database, and opens blobs of a rotated-out key'),
      t('test/engine/reasoning-cipher.test.ts', 'opens blobs of previous keys after a rotation'),
    ],
  },
  {
    id: 'background.durable_jobs',
    area: 'background',
    title:
      'Background responses are durable jobs: a job whose process died is run again by the next one, up to maxAttempts',
    status: 'supported',
    note: 'A rerun starts the generation again; its event log can be read whole afterwards.',
    tests: [
      t(CRASH, 'finishes a job whose process was killed, and the whole stream can be read afterwards'),
      t(CRASH, 'fails a job for good once it was interrupted maxAttempts times'),
      t(BACKGROUND, 'fails a background response the backend refuses, with the reason'),
      t(
        'test/store/conformance.test.ts',
        'claims jobs oldest first, per backend, never twice, and takes over expired leases',
      ),
    ],
  },
  {
    id: 'background.concurrency',
    area: 'background',
    title: 'At most background.concurrency jobs per backend and replica, the rest queued in order',
    status: 'supported',
    tests: [t(BACKGROUND, 'runs at most `concurrency` jobs per backend, the rest in order')],
  },
  {
    id: 'background.store_required',
    area: 'background',
    title: 'background with store:false is a 400 naming store',
    status: 'supported',
    note: 'A background response lives in the store until it is read, so it must be stored.',
    tests: [t(BACKGROUND, 'refuses background with store=false')],
  },
  {
    id: 'background.delete',
    area: 'background',
    title: 'Deleting a background response removes its event log and job',
    status: 'supported',
    tests: [t(BACKGROUND, 'deletes a background response with its event log and job')],
  },
  {
    id: 'gateway.graceful_shutdown',
    area: 'operations',
    title:
      'SIGTERM stops cleanly: running background jobs get shutdownGraceSeconds, then go back to the queue for another process',
    status: 'supported',
    note: 'Open foreground requests get the same grace period before they are cut; no test covers that part.',
    tests: [
      t('test/cli/serve.test.ts', 'serves with flags, answers requests, and stops cleanly on SIGTERM'),
      t(CRASH, 'lets a running job finish within the grace period on SIGTERM'),
      t(CRASH, 'hands a running job back on SIGTERM after the grace period, and another process finishes it'),
    ],
  },
  {
    id: 'gateway.idempotency',
    area: 'responses',
    title:
      'Idempotency-Key on POST /v1/responses: one run per key and tenant, the same answer (a stream replayed byte for byte) for retries',
    status: 'supported',
    note: 'The same key with a different body is a 422; a backend failure is not remembered, so a retry runs again.',
    tests: [
      t(
        'test/contract/idempotency.test.ts',
        'runs two concurrent identical requests once and gives both the same response',
      ),
      t('test/contract/idempotency.test.ts', 'refuses the same key with a different body with a 422'),
      t('test/contract/idempotency.test.ts', 'keeps keys per tenant'),
      t(
        'test/contract/idempotency.test.ts',
        'replays a stream byte for byte, also while the first one is still running',
      ),
      t(
        'test/contract/idempotency.test.ts',
        'remembers a client error, but lets a retry through after a backend failure',
      ),
      t(
        'test/contract/idempotency.test.ts',
        'gives a background request the same response, and survives a restart',
      ),
      t('test/contract/idempotency.test.ts', 'refuses a malformed key'),
    ],
  },
  {
    id: 'gateway.retention',
    area: 'operations',
    title:
      'Retention: expired responses are purged with their items, event logs and jobs; expired idempotency keys too',
    status: 'supported',
    tests: [
      t('test/contract/retention.test.ts', 'purges responses (and their event logs) once they expire'),
      t(
        'test/store/conformance.test.ts',
        'purges expired responses with everything attached, and expired idempotency keys',
      ),
      t('test/store/conformance.test.ts', 'purges in bounded batches, one replica at a time'),
    ],
  },
  {
    id: 'replicas.shared_state',
    area: 'replicas',
    title:
      'Several replicas share state: a response created on one is retrieved, chained and listed on another',
    status: 'conditional',
    condition: 'The replicas share a PostgreSQL database.',
    note: 'The contract suites also run as two replicas behind a round-robin balancer.',
    tests: [t(REPLICAS, 'creates on A and retrieves, chains and lists on B')],
  },
  {
    id: 'replicas.resumable_streams',
    area: 'replicas',
    title: 'A background stream is followed live through a replica that does not run the job',
    status: 'conditional',
    condition: 'The replicas share a PostgreSQL database.',
    tests: [t(REPLICAS, 'runs a job started through B on A, and B follows its stream live')],
  },
  {
    id: 'replicas.cancel',
    area: 'replicas',
    title: 'Cancelling through one replica stops a job running on another, promptly',
    status: 'conditional',
    condition: 'The replicas share a PostgreSQL database.',
    tests: [t(REPLICAS, 'cancels through B a job running on A, promptly')],
  },
  {
    id: 'replicas.takeover',
    area: 'replicas',
    title: 'Another replica finishes a job whose replica was killed (its lease expires)',
    status: 'conditional',
    condition: 'The replicas share a PostgreSQL database.',
    tests: [
      t(REPLICAS, 'finishes on another replica a job whose replica was killed'),
      t('test/store/conformance.test.ts', 'never hands one job to two concurrent claimers'),
    ],
  },
  {
    id: 'replicas.database_outage',
    area: 'replicas',
    title: 'A lost database connection: clear 503s (never a hang), /readyz unready, recovery on its own',
    status: 'conditional',
    condition: 'PostgreSQL (a SQLite file does not go away).',
    tests: [
      t(
        'test/replicas/database-outage.test.ts',
        'answers 503 while the database is gone and serves again once it is back',
      ),
      t('test/observability/readiness.test.ts', 'is unready when the database does not answer'),
    ],
  },
  {
    id: 'clients.codex',
    area: 'clients',
    title:
      'Codex CLI end to end (store:false, encrypted reasoning, namespace tools, web_search, full replays)',
    status: 'supported',
    tests: [
      t(
        'test/e2e/codex.test.ts',
        'runs a shell command through exec_command and reports the answer (store: false, encrypted reasoning)',
      ),
    ],
  },
  {
    id: 'clients.agents_sdk',
    area: 'clients',
    title: 'OpenAI Agents SDK end to end: an agent with a function tool, plain and streamed',
    status: 'supported',
    tests: [
      t('test/e2e/agents-sdk.test.ts', 'runs a function tool and answers'),
      t('test/e2e/agents-sdk.test.ts', 'runs a function tool and answers, streamed'),
    ],
  },
  {
    id: 'clients.ai_sdk',
    area: 'clients',
    title: 'Vercel AI SDK end to end: generateText and streamText with a tool step',
    status: 'supported',
    tests: [
      t(
        'test/e2e/ai-sdk.test.ts',
        'generateText: a tool step, then a second turn that refers to stored items',
      ),
      t('test/e2e/ai-sdk.test.ts', 'streamText: streams the answer after a tool step'),
    ],
  },
  {
    id: 'clients.langchain',
    area: 'clients',
    title: 'LangChain (useResponsesApi) end to end: a tool round trip, plain and streamed',
    status: 'supported',
    tests: [
      t('test/e2e/langchain.test.ts', 'completes a tool round trip'),
      t('test/e2e/langchain.test.ts', 'completes a tool round trip, streamed'),
    ],
  },
  {
    id: 'errors.backend_failures',
    area: 'errors',
    title: 'Backend trouble before the first byte is 502, 503 (+Retry-After) or 504, naming the backend',
    status: 'supported',
    tests: [
      BACKEND_REFUSALS,
      t(ERRORS, 'starts, reports the backend in /readyz, and answers requests with a clear 503'),
    ],
  },
  {
    id: 'gateway.backend.ollama',
    area: 'backends',
    title: 'Ollama native /api/chat (NDJSON, thinking, whole tool calls, num_ctx always sent)',
    status: 'supported',
    tests: [
      t(
        'test/backends/ollama.test.ts',
        'streams text as several text deltas and finishes with stop and usage',
      ),
      t('test/backends/ollama.test.ts', 'always sends num_ctx, and leaves unset options out'),
    ],
  },
  {
    id: 'gateway.backend.openai_chat',
    area: 'backends',
    title: 'OpenAI-compatible chat servers (llama.cpp, vLLM, LM Studio) and their quirks',
    status: 'supported',
    tests: [
      t('test/backends/openai-chat.test.ts', 'streams text, then usage and finish stop'),
      t(
        'test/backends/openai-chat.test.ts',
        'accepts usage inside the finishing chunk and no [DONE] (llama-box)',
      ),
    ],
  },
  {
    id: 'gateway.routing',
    area: 'backends',
    title: 'Model routing across backends; aliases with upstream names, context windows and options',
    status: 'supported',
    tests: [
      t(MODELS, 'routes each model to the backend that serves it, matching Ollama :latest tags'),
      t(MODELS, 'applies a model alias: upstream name, context window as num_ctx, and options'),
    ],
  },
  {
    id: 'gateway.failover',
    area: 'backends',
    title: 'Failover to the next backend before the first byte',
    status: 'supported',
    tests: [t(MODELS, 'fails over to the next backend when the first cannot be reached')],
  },
  {
    id: 'gateway.timeouts',
    area: 'limits',
    title:
      'Connect, first-byte, idle-stream and whole-request timeouts: each configurable, each a clear error',
    status: 'supported',
    tests: [
      t(LIMITS, 'a backend that never accepts the connection: 504 naming timeouts.connectMs'),
      t(LIMITS, 'a stream whose first byte is late: 504 naming timeouts.firstByteMs, before any event'),
      t(LIMITS, 'a blocking generation longer than the request budget: 504 naming timeouts.requestMs'),
      t(LIMITS, 'a stream that goes silent mid-way: error + response.failed naming timeouts.idleMs'),
      t(LIMITS, 'a blocking answer that stalls after its headers: 504 naming timeouts.idleMs'),
      t(LIMITS, 'per-backend timeouts override the global ones'),
    ],
  },
  {
    id: 'gateway.compressed_bodies',
    area: 'limits',
    title: 'gzip, deflate, br and zstd request bodies, with a decompressed-size cap',
    status: 'supported',
    tests: [
      t(ERRORS, 'accepts gzip and zstd bodies and refuses decompression bombs and unknown encodings'),
      t(LIMITS, 'refuses bodies that are too large on the wire or once decompressed, whatever the encoding'),
    ],
  },
  {
    id: 'gateway.request_limits',
    area: 'limits',
    title: 'Body (413), URL (414) and header (431) limits, in the error envelope',
    status: 'supported',
    tests: [
      t(ERRORS, 'answers an oversized body with 413'),
      t(LIMITS, 'answers a URL over limits.urlBytes with 414, and a malformed one with 400, in the envelope'),
      t(LIMITS, 'answers headers over limits.headerBytes with 431 in the error envelope'),
    ],
  },
  {
    id: 'gateway.api_keys',
    area: 'access',
    title:
      'API keys from the config file or stored hashed (`ferry keys`); missing, wrong and revoked keys are 401',
    status: 'supported',
    tests: [
      t(
        TENANTS,
        'answers missing, wrong and revoked keys with the same 401 envelope, and probes without a key',
      ),
      t('test/cli/keys.test.ts', 'creates, lists and revokes keys, and a running gateway honours them'),
    ],
  },
  {
    id: 'gateway.tenant_isolation',
    area: 'access',
    title: "Another tenant's ids are 404 on every endpoint that reads stored data",
    status: 'supported',
    tests: [
      t(TENANTS, 'keeps stored responses, items and chains to their tenant on every endpoint'),
      t(TENANTS, 'lets each tenant chain only onto its own responses, in both directions'),
    ],
  },
  {
    id: 'gateway.rate_limits',
    area: 'access',
    title:
      'Per-key and per-tenant requests per minute and concurrency: 429, Retry-After, x-ratelimit-* headers',
    status: 'supported',
    tests: [
      t(
        LIMITS,
        'sends x-ratelimit headers on successes and errors, a 429 with Retry-After when over, and recovers',
      ),
      t(LIMITS, 'limits concurrent requests: a held stream blocks the next request until it ends'),
    ],
  },
  {
    id: 'gateway.rate_limits.shared',
    area: 'access',
    title: 'Rate limits shared across replicas',
    status: 'conditional',
    condition: 'The replicas share a PostgreSQL database (with SQLite, limits are per process).',
    tests: [
      t('test/limits/shared-limits.test.ts', 'enforces one key’s requests per minute across both'),
      t(
        'test/limits/shared-limits.test.ts',
        'shares concurrency, frees it when a request ends, and ignores a vanished replica’s slots',
      ),
    ],
  },
  {
    id: 'gateway.metrics',
    area: 'operations',
    title: 'Prometheus /metrics: HTTP, responses, tokens, first token, backends, database, limits',
    status: 'supported',
    tests: [
      t(
        'test/observability/metrics.test.ts',
        'counts responses by model, mode and final status, and errors by code',
      ),
      t(
        'test/observability/metrics.test.ts',
        'counts backend calls by backend, model, operation and outcome, with latency and health',
      ),
    ],
  },
  {
    id: 'gateway.tracing',
    area: 'operations',
    title: 'OpenTelemetry traces (OTLP/HTTP) with GenAI attributes, continuing traceparent',
    status: 'conditional',
    condition: 'Tracing is enabled (tracing.enabled, --otlp-endpoint or FERRY_OTLP_ENDPOINT).',
    tests: [
      t(
        'test/observability/tracing.test.ts',
        'continues an incoming traceparent: a SERVER span per request, a CLIENT span per backend call with GenAI attributes',
      ),
      t(
        'test/observability/tracing.test.ts',
        'exports over OTLP/HTTP to the configured endpoint, with the configured headers',
      ),
    ],
  },
  {
    id: 'gateway.logs',
    area: 'operations',
    title: 'One structured log line per request; bodies only at debug; keys never logged',
    status: 'supported',
    tests: [
      t(
        'test/observability/logging.test.ts',
        'writes one JSON line per request with request id, tenant, key id, model, backend, status, latency and tokens',
      ),
      t(
        'test/observability/logging.test.ts',
        'never logs an API key, and logs prompts and answers only at debug level',
      ),
    ],
  },
  {
    id: 'gateway.readiness',
    area: 'operations',
    title: '/readyz checks the database, each backend and registered checks; /healthz is cheap',
    status: 'supported',
    tests: [
      t(
        'test/observability/readiness.test.ts',
        'reports the database (with latency), each backend, the job worker and other registered checks',
      ),
      t(
        'test/observability/readiness.test.ts',
        'keeps /healthz cheap: it asks neither the backends nor the database',
      ),
    ],
  },
  {
    id: 'gateway.stores',
    area: 'operations',
    title: 'State in SQLite (default) or PostgreSQL (several replicas), one conformance suite',
    status: 'supported',
    tests: [
      t(
        'test/store/conformance.test.ts',
        'creates, reads and deletes a response with its items, scoped to its tenant',
      ),
    ],
  },
  {
    id: 'gateway.compatibility_manifest',
    area: 'operations',
    title: 'GET /v1/compatibility: this manifest, each feature linked to its tests',
    status: 'supported',
    tests: [t(GATE, 'serves the manifest at GET /v1/compatibility')],
  },
];

export const FEATURES: readonly Feature[] = [...CHECKLIST, ...GATEWAY];

/** The body of `GET /v1/compatibility`. */
export function compatibilityManifest(version: string) {
  const summary = { supported: 0, conditional: 0, echoed: 0, unsupported: 0 };
  for (const feature of FEATURES) summary[feature.status]++;
  return {
    object: 'compatibility',
    ferry_version: version,
    statuses: {
      supported: 'Works with every backend kind.',
      conditional: 'Works when the backend or model can; see condition.',
      echoed: 'Accepted and echoed for client compatibility; no effect on generation.',
      unsupported: 'Refused with a 400 naming the parameter, or 404 for an endpoint Ferry does not serve.',
    },
    summary,
    features: FEATURES.map(({ probe, ...feature }) => ({
      ...feature,
      ...(probe ? { refusal: { method: probe.method, path: probe.path, ...probe.expect } } : {}),
    })),
  };
}

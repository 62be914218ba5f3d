import { z } from 'zod';
import { integer } from './validation.js';

/**
 * `POST /v1/responses` request body. Top-level fields are strict (an unknown field is a 400
 * `unknown_parameter`, like OpenAI); items and content parts are loose, because clients replay
 * output items verbatim with extra fields (`id`, `status`, `annotations`, `logprobs`, `phase`…).
 */

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish();

// ── content parts ─────────────────────────────────────────────────────────

const InputText = z.looseObject({ type: z.literal('input_text'), text: z.string() });
const InputImage = z.looseObject({
  type: z.literal('input_image'),
  image_url: nullable(z.string()),
  file_id: nullable(z.string()),
  detail: nullable(z.enum(['low', 'high', 'auto', 'original'])),
});
const InputFile = z.looseObject({
  type: z.literal('input_file'),
  file_id: nullable(z.string()),
  file_url: nullable(z.string()),
  file_data: nullable(z.string()),
  filename: nullable(z.string()),
});
const InputAudio = z.looseObject({ type: z.literal('input_audio'), input_audio: z.unknown() });
const OutputText = z.looseObject({ type: z.literal('output_text'), text: z.string() });
const Refusal = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });
const SummaryText = z.looseObject({ type: z.literal('summary_text'), text: z.string() });
const ReasoningText = z.looseObject({ type: z.literal('reasoning_text'), text: z.string() });

export const ContentPart = z.discriminatedUnion('type', [
  InputText,
  InputImage,
  InputFile,
  InputAudio,
  OutputText,
  Refusal,
]);
export type ContentPart = z.infer<typeof ContentPart>;

const ToolOutputPart = z.discriminatedUnion('type', [InputText, InputImage, InputFile]);
export type ToolOutputPart = z.infer<typeof ToolOutputPart>;

// ── input items ───────────────────────────────────────────────────────────

const ItemStatus = nullable(z.enum(['in_progress', 'completed', 'incomplete']));

const MessageItem = z.looseObject({
  type: z.literal('message'),
  id: nullable(z.string()),
  role: z.enum(['user', 'system', 'developer', 'assistant']),
  content: z.union([z.string(), z.array(ContentPart)]),
  status: ItemStatus,
  phase: nullable(z.enum(['commentary', 'final_answer'])),
});

const FunctionCallItem = z.looseObject({
  type: z.literal('function_call'),
  id: nullable(z.string()),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
  namespace: nullable(z.string()),
  status: ItemStatus,
});

const FunctionCallOutputItem = z.looseObject({
  type: z.literal('function_call_output'),
  id: nullable(z.string()),
  call_id: z.string().min(1).max(64),
  output: z.union([z.string(), z.array(ToolOutputPart)]),
  status: ItemStatus,
});

const CustomToolCallItem = z.looseObject({
  type: z.literal('custom_tool_call'),
  id: nullable(z.string()),
  call_id: z.string().min(1),
  name: z.string().min(1),
  input: z.string(),
  namespace: nullable(z.string()),
});

const CustomToolCallOutputItem = z.looseObject({
  type: z.literal('custom_tool_call_output'),
  id: nullable(z.string()),
  call_id: z.string().min(1).max(64),
  output: z.union([z.string(), z.array(ToolOutputPart)]),
});

const ReasoningItem = z.looseObject({
  type: z.literal('reasoning'),
  id: nullable(z.string()),
  summary: z.array(SummaryText).default([]),
  content: nullable(z.array(ReasoningText)),
  encrypted_content: nullable(z.string()),
  status: ItemStatus,
});

const ItemReference = z.looseObject({ type: z.literal('item_reference'), id: z.string().min(1) });

export const InputItem = z.preprocess(
  // `type` may be left out: a `{role, content}` object is a message, an `{id}` a reference.
  (value) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const record = value as Record<string, unknown>;
      if (record.type === undefined || record.type === null) {
        if ('role' in record) return { ...record, type: 'message' };
        if ('id' in record && Object.keys(record).length <= 2) return { ...record, type: 'item_reference' };
      }
    }
    return value;
  },
  z.discriminatedUnion('type', [
    MessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    CustomToolCallItem,
    CustomToolCallOutputItem,
    ReasoningItem,
    ItemReference,
  ]),
);
export type InputItem = z.infer<typeof InputItem>;
export type InputMessage = z.infer<typeof MessageItem>;

// ── tools ─────────────────────────────────────────────────────────────────

const JsonSchemaObject = z.record(z.string(), z.unknown());

export const FunctionTool = z.looseObject({
  type: z.literal('function'),
  name: z.string().regex(/^[a-zA-Z0-9_.:-]{1,128}$/, 'must be 1–128 letters, digits, _ . : or -'),
  description: nullable(z.string()),
  parameters: nullable(JsonSchemaObject),
  strict: nullable(z.boolean()),
});
export type FunctionTool = z.infer<typeof FunctionTool>;

export const CustomTool = z.looseObject({
  type: z.literal('custom'),
  name: z.string().regex(/^[a-zA-Z0-9_.:-]{1,128}$/, 'must be 1–128 letters, digits, _ . : or -'),
  description: nullable(z.string()),
  format: nullable(
    z.discriminatedUnion('type', [
      z.looseObject({ type: z.literal('text') }),
      z.looseObject({
        type: z.literal('grammar'),
        syntax: z.enum(['lark', 'regex']),
        definition: z.string(),
      }),
    ]),
  ),
});
export type CustomTool = z.infer<typeof CustomTool>;

export const NamespaceTool = z.looseObject({
  type: z.literal('namespace'),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, _ or -'),
  description: nullable(z.string()),
  tools: z.array(z.discriminatedUnion('type', [FunctionTool, CustomTool])),
});
export type NamespaceTool = z.infer<typeof NamespaceTool>;

/** OpenAI's hosted and client-executed tool types: recognised, then accepted or refused by the tool policy. */
export const HOSTED_TOOL_TYPES = [
  'web_search',
  'web_search_2025_08_26',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'file_search',
  'mcp',
  'code_interpreter',
  'image_generation',
  'local_shell',
  'shell',
  'apply_patch',
  'computer',
  'computer_use',
  'computer_use_preview',
  'tool_search',
  'programmatic_tool_calling',
] as const;
export type HostedToolType = (typeof HOSTED_TOOL_TYPES)[number];

const HostedTool = z.looseObject({ type: z.enum(HOSTED_TOOL_TYPES) });

export const Tool = z.discriminatedUnion('type', [FunctionTool, CustomTool, NamespaceTool, HostedTool]);
export type Tool = z.infer<typeof Tool>;

export const ToolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), name: z.string() }),
  z.looseObject({ type: z.literal('custom'), name: z.string() }),
  z.looseObject({
    type: z.literal('allowed_tools'),
    mode: z.enum(['auto', 'required']),
    tools: z.array(z.looseObject({ type: z.string(), name: nullable(z.string()) })),
  }),
  z.looseObject({ type: z.enum(HOSTED_TOOL_TYPES) }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

// ── text format, reasoning ────────────────────────────────────────────────

export const TextFormat = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text') }),
  z.strictObject({ type: z.literal('json_object') }),
  z.strictObject({
    type: z.literal('json_schema'),
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, _ or -'),
    schema: JsonSchemaObject,
    description: nullable(z.string()),
    strict: nullable(z.boolean()),
  }),
]);

export const ReasoningEffort = z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']);

const Metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((value) => Object.keys(value).length <= 16, { message: 'at most 16 pairs are allowed' });

export const IncludeValue = z.enum([
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'message.input_image.image_url',
  'computer_call_output.output.image_url',
  'code_interpreter_call.outputs',
  'reasoning.encrypted_content',
  'message.output_text.logprobs',
]);

// ── the request ───────────────────────────────────────────────────────────

export const CreateResponseRequest = z.strictObject({
  model: nullable(z.string().min(1)),
  input: nullable(z.union([z.string(), z.array(InputItem)])),
  instructions: nullable(z.string()),
  previous_response_id: nullable(z.string().min(1)),
  conversation: nullable(z.union([z.string(), z.looseObject({ id: z.string() })])),
  store: nullable(z.boolean()),
  stream: nullable(z.boolean()),
  stream_options: nullable(z.strictObject({ include_obfuscation: nullable(z.boolean()) })),
  background: nullable(z.boolean()),
  tools: nullable(z.array(Tool)),
  tool_choice: nullable(ToolChoice),
  parallel_tool_calls: nullable(z.boolean()),
  max_tool_calls: nullable(integer({ min: 1 })),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  top_logprobs: nullable(integer({ min: 0, max: 20 })),
  presence_penalty: nullable(z.number().min(-2).max(2)),
  frequency_penalty: nullable(z.number().min(-2).max(2)),
  max_output_tokens: nullable(integer({ min: 16 })),
  text: nullable(
    z.strictObject({
      format: nullable(TextFormat),
      verbosity: nullable(z.enum(['low', 'medium', 'high'])),
    }),
  ),
  reasoning: nullable(
    z.strictObject({
      effort: nullable(ReasoningEffort),
      summary: nullable(z.enum(['auto', 'concise', 'detailed'])),
      generate_summary: nullable(z.enum(['auto', 'concise', 'detailed'])),
      mode: nullable(z.string()),
      context: nullable(z.enum(['auto', 'current_turn', 'all_turns'])),
    }),
  ),
  truncation: nullable(z.enum(['auto', 'disabled'])),
  metadata: nullable(Metadata),
  include: nullable(z.array(IncludeValue)),
  prompt: nullable(z.unknown()),
  prompt_cache_key: nullable(z.string().max(64)),
  prompt_cache_retention: nullable(z.enum(['in_memory', '24h'])),
  prompt_cache_options: nullable(z.unknown()),
  safety_identifier: nullable(z.string().max(64)),
  user: nullable(z.string()),
  service_tier: nullable(z.enum(['auto', 'default', 'flex', 'scale', 'priority', 'fast', 'ultrafast'])),
  context_management: nullable(z.unknown()),
  moderation: nullable(z.unknown()),
  /** Sent by Codex; informational only. */
  client_metadata: nullable(z.record(z.string(), z.unknown())),
});
export type CreateResponseRequest = z.infer<typeof CreateResponseRequest>;

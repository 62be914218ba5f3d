import type { CreateResponseRequest } from '../api/create-response.js';
import { invalidRequest, unsupported } from '../api/errors.js';

/**
 * Request features Ferry does not provide, refused loudly with the parameter named, never
 * silently ignored. Each entry goes when the feature lands.
 */
export function rejectUnsupported(request: CreateResponseRequest): void {
  if (request.conversation != null) {
    throw unsupported(
      'conversation',
      'the Conversations API is not available; chain with previous_response_id or send the whole input',
    );
  }
  if (request.prompt != null) throw unsupported('prompt', 'stored prompt templates are not available');
  if (request.context_management != null)
    throw unsupported('context_management', 'server-side compaction is not available');
  if (request.moderation != null) throw unsupported('moderation', 'moderation is not available');
  if (request.top_logprobs)
    throw unsupported('top_logprobs', 'backends do not report log probabilities through Ferry');
  for (const value of request.include ?? []) {
    if (value === 'message.output_text.logprobs') throw unsupported('include', `'${value}' is not available`);
  }
  if (request.stream_options != null && !request.stream) {
    throw invalidRequest("'stream_options' is only allowed when 'stream' is true.", 'stream_options');
  }
  if (Array.isArray(request.input)) {
    for (const [i, item] of request.input.entries()) {
      // Tool outputs may be content parts too (text and images).
      const isOutput = item.type === 'function_call_output' || item.type === 'custom_tool_call_output';
      const parts = item.type === 'message' ? item.content : isOutput ? item.output : undefined;
      if (parts === undefined || typeof parts === 'string') continue;
      for (const [j, part] of parts.entries()) {
        const param = `input[${i}].${isOutput ? 'output' : 'content'}[${j}]`;
        if (part.type === 'input_file')
          throw unsupported(param, 'file inputs need the Files API, which is not available');
        if (part.type === 'input_audio') throw unsupported(param, 'audio inputs are not available');
        if (part.type === 'input_image' && !part.image_url) {
          throw unsupported(
            param,
            'images must be given as image_url (https or data: URL); file_id needs the Files API',
          );
        }
      }
    }
  }
}

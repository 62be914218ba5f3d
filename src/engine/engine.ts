import type { Logger } from 'pino';
import type { CreateResponseRequest } from '../api/create-response.js';
import { ApiError, invalidRequest } from '../api/errors.js';
import { newId } from '../api/ids.js';
import { isFinished, type ResponseObject } from '../api/wire.js';
import { BackendError } from '../backends/errors.js';
import type { BackendPart, BackendRequest } from '../backends/types.js';
import type { FerryConfig } from '../config/schema.js';
import type { RequestObservation } from '../observability/request-observation.js';
import type { RunObserver, Telemetry } from '../observability/run-observer.js';
import type { Route, Router } from '../router/router.js';
import type { ChainContext, Store, StoredItem } from '../store/types.js';
import { backendErrorToApi, canFailOver, toStreamError } from './backend-errors.js';
import {
  checkAgainstContext,
  isReference,
  namedIds,
  normalizeInput,
  resolveReferences,
  toBackendMessages,
} from './conversation.js';
import { inlineImageUrls } from './images.js';
import { OutputGuard, type OutputPolicy, type Violation } from './output-guard.js';
import { restoreEncryptedReasoning, type ReasoningCipher } from './reasoning/cipher.js';
import { resolveReasoningEffort } from './reasoning/effort.js';
import { ResponseBuilder, type EventSink } from './response-builder.js';
import { textFormatPolicy } from './structured-output.js';
import { estimateTextTokens } from './tokens.js';
import { backendToolChoice, backendTools, resolveToolChoice } from './tools/choice.js';
import { ToolSetShaper } from './tools/shaper.js';
import { ToolSet } from './tools/toolset.js';
import { fitContext } from './truncation.js';
import { rejectUnsupported } from './unsupported.js';

export interface EngineDeps {
  store: Store;
  router: Router;
  config: FerryConfig;
  logger: Logger;
  /** Seals and opens reasoning items' `encrypted_content`. */
  reasoningCipher: ReasoningCipher;
  /** Metrics and traces of each run; absent in tests that do not look. */
  telemetry?: Telemetry;
}

/** Attempts per response: the first, and one retry when the model broke the request's rules. */
const MAX_ATTEMPTS = 2;

/** Everything decided before a backend is called: validated, routed, with its context loaded. */
export interface ResponsePlan {
  tenant: string;
  request: CreateResponseRequest;
  /** The response in its initial state; the builder completes it. */
  response: ResponseObject;
  routes: Route[];
  backendRequest: BackendRequest;
  inputItems: StoredItem[];
  ancestors: string[];
  estimatedInputTokens: number;
  /** What the model's answer must respect (tools, tool_choice, structured output). */
  output: OutputPolicy;
  /** Whether reasoning items carry `encrypted_content` (`include: ["reasoning.encrypted_content"]`). */
  encryptReasoning: boolean;
  /** Whether reasoning items carry their text as a summary too (`reasoning.summary`). */
  summarizeReasoning: boolean;
  /** Observes the run (backend attempts, timing, outcome) for metrics, traces and logs. */
  run?: RunObserver;
}

/** A background job as stored: the request and what planning it decided. */
export interface JobPayload {
  request: CreateResponseRequest;
  backendRequest: BackendRequest;
  estimatedInputTokens: number;
  /** Whether the job's events are logged (background and stream). */
  stream: boolean;
}

/** A generation a backend has accepted. */
export interface OpenedRun {
  route: Route;
  parts: AsyncIterable<BackendPart>;
  /** The plan it runs (a retry reopens it). */
  plan: ResponsePlan;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * Runs responses: plans a request (validation beyond the schema, routing, the
 * `previous_response_id` chain, truncation), opens it on a backend (failing over before the
 * first byte), drives the backend's parts into a ResponseBuilder and saves the result.
 * HTTP handlers compose these steps for blocking and streaming calls alike.
 */
export class ResponsesEngine {
  private readonly deps: EngineDeps;
  private droppedToolsReported = false;

  constructor(deps: EngineDeps) {
    this.deps = deps;
  }

  async plan(
    tenant: string,
    request: CreateResponseRequest,
    observation?: RequestObservation,
  ): Promise<ResponsePlan> {
    if (observation) observation.model = request.model ?? undefined;
    rejectUnsupported(request);
    if (request.background && request.store === false) {
      // A background response lives in the store until a client reads it; unstored it could never be.
      throw invalidRequest(
        'Background responses must be stored: store=false is not allowed together with background=true.',
        'store',
      );
    }
    const model = request.model;
    if (!model)
      throw new ApiError(400, "Missing required parameter: 'model'.", {
        param: 'model',
        code: 'missing_required_parameter',
      });
    const routes = await this.deps.router.resolve(model);
    const route = routes[0]!;

    const chain = request.previous_response_id
      ? await this.loadChain(tenant, request.previous_response_id)
      : undefined;
    let input = normalizeInput(request.input);
    const references = new Set(input.filter(isReference).map((item) => item.id));
    if (references.size)
      input = resolveReferences(input, await this.deps.store.findItems(tenant, [...references]));
    checkAgainstContext(chain?.items ?? [], input, references, namedIds(request.input));
    if (input.length === 0 && !chain && !request.instructions) {
      throw new ApiError(400, "Missing required parameter: 'input'.", {
        param: 'input',
        code: 'missing_required_parameter',
      });
    }

    const rules = answerRules(request);
    const { tools, choice, textFormat } = rules.output;
    if (tools.dropped.length) this.reportDroppedTools(tools.dropped, model);
    const reasoning = resolveReasoningEffort(request.reasoning?.effort, route.reasoning, model);
    const offeredTools = tools.isEmpty ? [] : backendTools(choice, tools);

    // Reasoning the client carried itself (`encrypted_content`) goes back to the model as it was.
    const restored = restoreEncryptedReasoning(input, this.deps.reasoningCipher);
    const conversation = toBackendMessages(
      chain ? [...chain.items, ...restored] : restored,
      request.instructions,
    );
    const truncation = request.truncation ?? 'disabled';
    const toolTokens = offeredTools.length ? estimateTextTokens(JSON.stringify(offeredTools)) : 0;
    const fitted = fitContext(conversation, route.contextWindow, truncation, model, toolTokens);
    const backendRequest: BackendRequest = {
      model: route.upstreamModel,
      messages: fitted.messages,
      // Background runs always stream from the backend: idle timeouts instead of one long wait.
      stream: request.stream === true || request.background === true,
      contextWindow: route.contextWindow,
      allowTruncation: truncation === 'auto',
      ...reasoning,
    };
    if (route.options) backendRequest.options = route.options;
    if (request.max_output_tokens != null) backendRequest.maxOutputTokens = request.max_output_tokens;
    if (request.temperature != null) backendRequest.temperature = request.temperature;
    if (request.top_p != null) backendRequest.topP = request.top_p;
    if (request.presence_penalty != null) backendRequest.presencePenalty = request.presence_penalty;
    if (request.frequency_penalty != null) backendRequest.frequencyPenalty = request.frequency_penalty;
    if (offeredTools.length) {
      backendRequest.tools = offeredTools;
      backendRequest.toolChoice = backendToolChoice(choice);
      if (request.parallel_tool_calls != null) backendRequest.parallelToolCalls = request.parallel_tool_calls;
    }
    if (textFormat) backendRequest.responseFormat = textFormat.backendFormat;

    const response = initialResponse(newId('resp'), request, model);
    return {
      tenant,
      request,
      response,
      routes,
      backendRequest,
      inputItems: input,
      ancestors: chain ? chain.path : [],
      estimatedInputTokens: fitted.estimatedTokens,
      ...rules,
      run: this.deps.telemetry?.startRun({
        tenant,
        model,
        mode: request.background ? 'background' : request.stream ? 'stream' : 'blocking',
        streamed: backendRequest.stream,
        request,
        responseId: response.id,
        observation,
      }),
    };
  }

  /** The builder for a plan's response, with the plan's tool shapes and reasoning sealing. */
  createBuilder(
    plan: ResponsePlan,
    options: { sink?: EventSink; startSequence?: number } = {},
  ): ResponseBuilder {
    const cipher = this.deps.reasoningCipher;
    return new ResponseBuilder(plan.response, {
      ...options,
      shaper: plan.output.tools.isEmpty ? undefined : new ToolSetShaper(plan.output.tools),
      estimatedInputTokens: plan.estimatedInputTokens,
      summarizeReasoning: plan.summarizeReasoning,
      ...(plan.encryptReasoning ? { encryptReasoning: (text: string) => cipher.seal(text) } : {}),
    });
  }

  /**
   * Hosted tools Ferry leaves out (Codex sends `web_search` on every request): a warning the
   * first time, so operators know the model was not offered it, then debug lines.
   */
  private reportDroppedTools(types: string[], model: string): void {
    const message = `tools of type ${types.join(', ')} are not available through Ferry; they were not offered to the model`;
    if (this.droppedToolsReported) this.deps.logger.debug({ model, tools: types }, message);
    else this.deps.logger.warn({ model, tools: types }, `${message} (reported once)`);
    this.droppedToolsReported = true;
  }

  private async loadChain(tenant: string, id: string): Promise<ChainContext> {
    const chain = await this.deps.store.loadChain(tenant, id);
    if (!chain) {
      throw invalidRequest(
        `Previous response with id '${id}' not found.`,
        'previous_response_id',
        'previous_response_not_found',
      );
    }
    const status = chain.response.status;
    if (!isFinished(status)) {
      throw invalidRequest(
        `Previous response with id '${id}' is still ${status.replace('_', ' ')}; wait for it to finish.`,
        'previous_response_id',
      );
    }
    return chain;
  }

  /** Starts the generation on the first backend that accepts it; backend refusals become ApiErrors. */
  async open(plan: ResponsePlan, signal: AbortSignal): Promise<OpenedRun> {
    const { router } = this.deps;
    let lastError: unknown;
    let inlined: BackendRequest['messages'] | undefined;
    const run = plan.run;
    for (const route of plan.routes) {
      const started = performance.now();
      run?.attempt(route);
      try {
        let messages = plan.backendRequest.messages;
        if (route.backend.kind === 'ollama') messages = inlined ??= await inlineImageUrls(messages, signal);
        const parts = await route.backend.chat(
          { ...plan.backendRequest, messages, model: route.upstreamModel },
          signal,
        );
        router.recordSuccess(route.backend.name, performance.now() - started);
        run?.accepted();
        return { route, parts, plan };
      } catch (error) {
        run?.attemptFailed(error, signal.aborted);
        if (signal.aborted) {
          run?.notStarted(error, true);
          throw error;
        }
        router.recordFailure(route.backend.name, error);
        lastError = error;
        if (!canFailOver(error) || route === plan.routes.at(-1)) break;
        this.deps.logger.warn(
          { backend: route.backend.name, error: (error as Error).message },
          'backend failed before the first byte; trying the next one',
        );
      }
    }
    const failure =
      lastError instanceof BackendError ? backendErrorToApi(lastError, plan.response.model) : lastError;
    run?.notStarted(failure, false);
    throw failure;
  }

  /**
   * Feeds the backend's parts to the builder until the backend is done, fails or the signal
   * aborts. `afterPart` lets a stream wait for a slow client (backpressure).
   */
  async drive(
    opened: OpenedRun,
    builder: ResponseBuilder,
    signal: AbortSignal,
    options: { afterPart?: () => Promise<void> | undefined; announceCancel?: () => boolean } = {},
  ): Promise<ResponseObject> {
    const response = await this.driveAttempts(opened, builder, signal, options);
    opened.plan.run?.finished(response);
    return response;
  }

  private async driveAttempts(
    opened: OpenedRun,
    builder: ResponseBuilder,
    signal: AbortSignal,
    options: { afterPart?: () => Promise<void> | undefined; announceCancel?: () => boolean },
  ): Promise<ResponseObject> {
    const { plan } = opened;
    const observer = plan.run;
    let run = opened;
    let guard: OutputGuard | undefined;
    // A cancelled response keeps what the model said so far, held back or not.
    const cancel = () => {
      for (const part of guard?.interrupted() ?? []) builder.accept(part);
      return builder.cancel({ announce: options.announceCancel?.() === true });
    };
    try {
      for (let attempt = 1; ; attempt++) {
        // Every part passes the guard, which holds back what must be checked before a client sees it.
        guard = new OutputGuard(plan.output, {
          holdAll: !builder.streaming,
          model: plan.response.model,
        });
        for await (const part of run.parts) {
          observer?.part(part);
          for (const allowed of guard.accept(part)) builder.accept(allowed);
          // Leaving the loop closes the backend stream: a broken rule needs no more tokens.
          if (guard.violation) break;
          const wait = options.afterPart?.();
          if (wait) await wait;
        }
        if (signal.aborted) return cancel();
        for (const allowed of guard.end()) builder.accept(allowed);
        const violation = guard.violation;
        if (!violation) return builder.finish();

        const retry = attempt < MAX_ATTEMPTS && !guard.committed;
        this.deps.logger.warn(
          { backend: run.route.backend.name, code: violation.code, problem: violation.message, attempt },
          retry
            ? "the model's answer broke the request's rules; asking it once more"
            : "the model's answer broke the request's rules; the response fails",
        );
        if (!retry) {
          return builder.fail({
            type: 'server_error',
            code: violation.code,
            message: violation.message,
            param: null,
          });
        }
        builder.endReasoning();
        run = await this.open(withCorrection(plan, violation), signal);
      }
    } catch (error) {
      if (signal.aborted) return cancel();
      this.deps.logger.warn({ backend: run.route.backend.name, err: error }, 'backend failed mid-response');
      return builder.fail(toStreamError(error));
    }
  }

  /** What a background job needs to run later, on any replica. */
  toJob(plan: ResponsePlan): { backend: string; payload: JobPayload } {
    return {
      backend: plan.routes[0]!.backend.name,
      payload: {
        request: plan.request,
        backendRequest: plan.backendRequest,
        estimatedInputTokens: plan.estimatedInputTokens,
        stream: plan.request.stream === true,
      },
    };
  }

  /** Rebuilds a job's plan; routes are resolved again, since backends may have changed meanwhile. */
  async restore(tenant: string, payload: JobPayload, response: ResponseObject): Promise<ResponsePlan> {
    return {
      tenant,
      request: payload.request,
      response,
      routes: await this.deps.router.resolve(response.model),
      backendRequest: payload.backendRequest,
      inputItems: [],
      ancestors: [],
      estimatedInputTokens: payload.estimatedInputTokens,
      ...answerRules(payload.request),
    };
  }

  /** Saves a finished response when the request asked for it (`store` defaults to true). */
  async persist(plan: ResponsePlan, response: ResponseObject, json?: string): Promise<void> {
    if (!response.store) return;
    await this.deps.store.createResponse({
      tenant: plan.tenant,
      response,
      ancestors: plan.ancestors,
      inputItems: plan.inputItems,
      expiresAt: now() + this.deps.config.retentionSeconds,
      ...(json !== undefined ? { json } : {}),
    });
  }
}

/**
 * The plan for a retry: the same conversation, then (for a repair) the model's faulty answer,
 * then an instruction saying what was wrong. The client never sees these extra messages.
 */
function withCorrection(plan: ResponsePlan, violation: Violation): ResponsePlan {
  const messages = [...plan.backendRequest.messages];
  if (violation.answer) messages.push({ role: 'assistant', content: violation.answer });
  messages.push({ role: 'user', content: violation.instruction });
  return { ...plan, backendRequest: { ...plan.backendRequest, messages } };
}

/**
 * What a request asks of the model's answer (tools, `tool_choice`, structured output, reasoning
 * items), derived from the request alone, so a background job rebuilds it where it runs.
 */
function answerRules(
  request: CreateResponseRequest,
): Pick<ResponsePlan, 'output' | 'encryptReasoning' | 'summarizeReasoning'> {
  const tools = ToolSet.from(request.tools);
  return {
    output: {
      tools,
      choice: resolveToolChoice(request.tool_choice, tools),
      textFormat: textFormatPolicy(request.text?.format),
      maxToolCalls: Math.min(
        request.parallel_tool_calls === false ? 1 : Infinity,
        request.max_tool_calls ?? Infinity,
      ),
    },
    encryptReasoning: request.include?.includes('reasoning.encrypted_content') === true,
    summarizeReasoning: Boolean(request.reasoning?.summary ?? request.reasoning?.generate_summary),
  };
}

/** The Response object as it starts: every field present, echoing the request. */
export function initialResponse(id: string, request: CreateResponseRequest, model: string): ResponseObject {
  const format = request.text?.format;
  return {
    id,
    object: 'response',
    created_at: now(),
    status: request.background ? 'queued' : 'in_progress',
    background: request.background === true,
    completed_at: null,
    conversation: null,
    error: null,
    frequency_penalty: request.frequency_penalty ?? 0,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    max_tool_calls: request.max_tool_calls ?? null,
    model,
    output: [],
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    presence_penalty: request.presence_penalty ?? 0,
    previous_response_id: request.previous_response_id ?? null,
    prompt_cache_key: request.prompt_cache_key ?? null,
    prompt_cache_retention: request.prompt_cache_retention ?? null,
    reasoning: { effort: request.reasoning?.effort ?? null, summary: request.reasoning?.summary ?? null },
    safety_identifier: request.safety_identifier ?? null,
    service_tier: request.service_tier ?? 'default',
    store: request.store ?? true,
    temperature: request.temperature ?? 1,
    text: {
      format:
        format?.type === 'json_schema'
          ? {
              type: 'json_schema',
              name: format.name,
              schema: format.schema,
              ...(format.description ? { description: format.description } : {}),
              strict: format.strict ?? false,
            }
          : (format ?? { type: 'text' }),
      verbosity: request.text?.verbosity ?? 'medium',
    },
    tool_choice: request.tool_choice ?? 'auto',
    tools: request.tools ?? [],
    top_logprobs: request.top_logprobs ?? 0,
    top_p: request.top_p ?? 1,
    truncation: request.truncation ?? 'disabled',
    usage: null,
    user: request.user ?? null,
    metadata: request.metadata ?? {},
  };
}

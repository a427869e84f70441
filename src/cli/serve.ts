import { createWriteStream } from "node:fs";
import { type Command, Option } from "commander";
import pinoPretty from "pino-pretty";
import { type KvCacheDtype, untilKvCacheResident } from "../backend/backend.js";
import type { KernelPath } from "../backend/native/addon.js";
import type { BackendName } from "../backend/native/choose-backend.js";
import type { KvAllocation } from "../core/kv-cache-manager.js";
import type { KvCacheEvent } from "../core/kv-events.js";
import type { SchedulingPolicy } from "../core/request-queue.js";
import { createEngine, engineBackend, engineMaxModelLen } from "../engine/create-engine.js";
import { defaultEngineConfig } from "../engine/engine-config.js";
import { KvEventsPublisher, parseKvEventsConfig } from "../engine/kv-events-publisher.js";
import { quoteFileString } from "../model/errors.js";
import { describeTypeMix } from "../model/type-mix.js";
import { listenWhileLoading } from "../server/loading.js";
import { type MetricsPrefix, metricsPrefixes } from "../server/metrics-prefix.js";
import { buildServer, defaultLimits } from "../server/server.js";
import { measureStepRates } from "../workload/step-rates.js";
import { resolveModel } from "./default-model.js";
import { listenError } from "./listen-error.js";
import { backendOptions, byteSizeOption, kvCacheDtypeOption, numberOption, portOption } from "./options.js";
import { loadModelShowingProgress, withInterleavingBar } from "./progress.js";
import { runAction } from "./run-action.js";

interface ServeOptions {
  model?: string;
  tokenizer?: string;
  host: string;
  port: number;
  servedModelName?: string;
  apiKey?: string;
  maxModelLen?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  kvCacheMemory?: number;
  kvCacheDtype: KvCacheDtype;
  kernels?: KernelPath;
  stepLog?: string;
  maxQueue: number;
  maxSeqsPerRequest: number;
  parseSpecial: boolean;
  corsOrigin?: string;
  shutdownTimeout: number;
  metricsPrefix: MetricsPrefix;
  kvEventsConfig?: string;
  backend?: BackendName;
  threads?: number;
  blockSize?: number;
  kvAllocation: KvAllocation;
  enablePrefixCaching: boolean;
  disableHybridKvCacheManager?: boolean;
  batching: "continuous" | "static";
  schedulingPolicy: SchedulingPolicy;
  longPrefillTokenThreshold?: number;
  logFormat?: "text" | "json";
}

export function registerServe(program: Command) {
  backendOptions(program.command("serve"))
    .description(
      "serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /metrics …)",
    )
    .option(
      "--model <path|ref>",
      "GGUF file, Hugging Face directory, llama2.c .bin, or hf:ORG/REPO[:QUANT] from the Hub (default: the bundled demo model)",
    )
    .option("--tokenizer <path>", "tokenizer file for formats that keep it apart (llama2.c tokenizer.bin)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", portOption, 8000)
    .option("--served-model-name <name>", "the model name clients send (default: the model's own name)")
    .option(
      "--api-key <key>",
      "require Authorization: Bearer <key> on all but /health, /version, /metrics, /tokenize, /detokenize (default: $VELLUM_API_KEY, else open)",
    )
    .option("--max-model-len <n>", "longest sequence (prompt + output) in tokens", numberOption(true))
    .option("--max-num-seqs <n>", "most sequences in one batch", numberOption(true))
    .option(
      "--max-num-batched-tokens <n>",
      "token budget of one engine step (default on the native backend, with no --long-prefill-token-threshold: what a prefill of ~2 decode steps' time takes, measured at startup; else 2048)",
      numberOption(true),
    )
    .addOption(
      byteSizeOption(
        "--kv-cache-memory <size>",
        'KV cache budget, e.g. "2GiB" (default: 30% of the free memory, or of what the cgroup limit leaves, less the mapped weights)',
      ),
    )
    .addOption(kvCacheDtypeOption())
    .option(
      "--max-queue <n>",
      "most sequences (completions) waiting + running; beyond it requests get 503 with Retry-After (0 = no bound)",
      numberOption(true, 0),
      defaultLimits.maxQueue,
    )
    .option(
      "--max-seqs-per-request <n>",
      "most sequences (prompts × n) one request may ask for; beyond it 400 (0 = no cap)",
      numberOption(true, 0),
      defaultLimits.maxSeqsPerRequest,
    )
    .option(
      "--no-parse-special",
      "completion prompts' special-token text (e.g. </s>) stays text by default; requests may still set parse_special (chat content is always text)",
    )
    .option(
      "--cors-origin <origin>",
      "allow browser requests from this origin (e.g. * or https://example.com; several separated by commas)",
    )
    .option("--block-size <n>", "tokens per KV cache block", numberOption(true))
    .addOption(
      new Option(
        "--kv-allocation <mode>",
        "paged, or contiguous: reserve maxModelLen per request (the baseline paging is measured against)",
      )
        .choices(["paged", "contiguous"])
        .default("paged"),
    )
    .option("--no-enable-prefix-caching", "do not share KV blocks between requests with equal prefixes")
    .option(
      "--disable-hybrid-kv-cache-manager",
      "sliding-window layers keep every block too, as full-attention ones do, instead of giving back what left their window",
    )
    .addOption(
      new Option(
        "--batching <mode>",
        "continuous, or static: a batch admits no one until all of it has finished (the baseline)",
      )
        .choices(["continuous", "static"])
        .default("continuous"),
    )
    .addOption(
      new Option(
        "--scheduling-policy <policy>",
        "fcfs, or priority (the request's priority field, lower first)",
      )
        .choices(["fcfs", "priority"])
        .default("fcfs"),
    )
    .option(
      "--long-prefill-token-threshold <n>",
      "cap on one request's prefill chunk per step (0 = off; default: as --max-num-batched-tokens when that is measured, else 0)",
      numberOption(true),
    )
    .option(
      "--step-log <file>",
      "append every engine step to this file as a JSON line: its composition and where its time went (forward, attention, sampling)",
    )
    .option(
      "--shutdown-timeout <seconds>",
      "on SIGTERM/SIGINT, /health turns 503 and new requests get 503; this long running requests may finish before they are aborted (default below Kubernetes' 30 s terminationGracePeriodSeconds)",
      numberOption(false, 0),
      25,
    )
    .addOption(
      new Option(
        "--metrics-prefix <prefix>",
        "vllm: /metrics also exports every vellum: series under vllm: names, for gateways and dashboards that expect vLLM's",
      )
        .choices(metricsPrefixes)
        .default("vellum"),
    )
    .option(
      "--kv-events-config <json>",
      'publish KV cache events as vLLM does (ZeroMQ, msgpack), with vLLM\'s fields, e.g. \'{"enable_kv_cache_events":true,"endpoint":"tcp://*:5557","topic":"kv@POD@MODEL"}\'',
    )
    .addOption(
      new Option(
        "--log-format <format>",
        "text (human-readable) or json, one object a line (default: text on a terminal, json when piped)",
      ).choices(["text", "json"]),
    )
    .action(runAction(serve));
}

async function serve(opts: ServeOptions) {
  const kvEventsConfig =
    opts.kvEventsConfig === undefined ? undefined : parseKvEventsConfig(opts.kvEventsConfig);
  // Listening comes first, so that an orchestrator sees a live process (/live 200) and a server not yet ready
  // (/health 503) while the model loads, which can take minutes.
  const loading = await listenWhileLoading(opts.host, opts.port).catch((err) => {
    throw listenError(err, opts.host, opts.port);
  });
  // Nothing runs yet: a stop signal while loading ends the process at once.
  const stopWhileLoading = () => process.exit(0);
  process.once("SIGTERM", stopWhileLoading);
  process.once("SIGINT", stopWhileLoading);
  // A model that fails to load (or an endpoint that cannot be bound) must not leave the process listening.
  const kvEvents =
    kvEventsConfig?.enable_kv_cache_events && kvEventsConfig.publisher === "zmq"
      ? await KvEventsPublisher.open(kvEventsConfig, (message) => process.stderr.write(`${message}\n`)).catch(
          (err) => {
            loading.server.close();
            throw err;
          },
        )
      : undefined;
  const onKvEvents = kvEvents && ((events: KvCacheEvent[]) => kvEvents.publish(events));
  const { path, model, engine, summary } = await loadEngine(opts, onKvEvents).catch(async (err) => {
    loading.server.close();
    await kvEvents?.close();
    throw err;
  });
  const server = buildServer(engine, model, {
    servedModelName: opts.servedModelName,
    apiKey: opts.apiKey ?? process.env.VELLUM_API_KEY,
    maxQueue: opts.maxQueue,
    parseSpecial: opts.parseSpecial,
    maxSeqsPerRequest: opts.maxSeqsPerRequest,
    corsOrigin: opts.corsOrigin,
    metricsPrefix: opts.metricsPrefix,
    httpServer: loading.server,
    logger: {
      level: process.env.VELLUM_LOG_LEVEL ?? "info",
      ...((opts.logFormat ?? (process.stdout.isTTY ? "text" : "json")) === "text" && {
        stream: pinoPretty({ ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss.l", singleLine: true }),
      }),
    },
  });
  const log = server.app.log;
  const config = engine.config;
  log.info(`model ${quoteFileString(model.name)} (${model.format}, ${path})`);
  log.info(`weights: ${describeTypeMix(model.tensors.values())}`);
  log.info(
    `${summary}; max ${config.maxNumSeqs} sequences and ${config.maxNumBatchedTokens} tokens per step; ` +
      `${config.kvAllocation} KV, prefix caching ${config.enablePrefixCaching && config.kvAllocation === "paged" ? "on" : "off"}, ${config.batching} batching, ${config.policy}`,
  );

  await server.app.ready();
  loading.serveWith(server.app.routing);
  process.off("SIGTERM", stopWhileLoading);
  process.off("SIGINT", stopWhileLoading);
  if (kvEvents)
    log.info(
      `KV cache events at ${kvEvents.endpoint}${kvEvents.replayEndpoint ? `, replay at ${kvEvents.replayEndpoint}` : ""}`,
    );
  log.info(`serving ${quoteFileString(opts.servedModelName ?? model.name)} at ${loading.url}/v1`);
  const servingSince = performance.now();
  void untilKvCacheResident(engine.core.backend).then(() =>
    log.info(
      `KV cache resident ${((performance.now() - servingSince) / 1000).toFixed(1)} s after serving began: steps no longer pay page faults for new blocks`,
    ),
  );

  const shutdown = async (signal: string) => {
    log.info(
      `${signal}: not ready (/health 503), no new requests; running ones get ${opts.shutdownTimeout}s to finish`,
    );
    await server.close(opts.shutdownTimeout * 1000);
    await kvEvents?.close();
    log.info("shut down");
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

/** Loads the model and builds the engine: the minutes during which the server answers 503. */
async function loadEngine(opts: ServeOptions, onKvEvents?: (events: KvCacheEvent[]) => void) {
  const path = await resolveModel(opts.model);
  const model = loadModelShowingProgress(path, { tokenizer: opts.tokenizer });
  const backend = await withInterleavingBar((onInterleaveProgress) =>
    engineBackend(model, { ...opts, onInterleaveProgress }),
  );
  // The prefill budget from measured rates, unless the user set either step budget.
  const measure =
    backend.name === "native" &&
    opts.maxNumBatchedTokens === undefined &&
    opts.longPrefillTokenThreshold === undefined;
  const stepRates = measure
    ? await measureStepRates(backend, {
        vocabSize: model.config.vocabSize,
        blockSize: opts.blockSize ?? defaultEngineConfig.blockSize,
        dtype: opts.kvCacheDtype,
        contextLength: engineMaxModelLen(model, opts.maxModelLen),
      })
    : undefined;
  const { engine, summary } = await createEngine(model, {
    backend,
    stepRates,
    blockSize: opts.blockSize,
    kvCacheDtype: opts.kvCacheDtype,
    kvAllocation: opts.kvAllocation,
    enablePrefixCaching: opts.enablePrefixCaching,
    disableHybridKvCacheManager: opts.disableHybridKvCacheManager,
    batching: opts.batching,
    policy: opts.schedulingPolicy,
    longPrefillTokenThreshold: opts.longPrefillTokenThreshold,
    maxModelLen: opts.maxModelLen,
    maxNumSeqs: opts.maxNumSeqs,
    maxNumBatchedTokens: opts.maxNumBatchedTokens,
    kvCacheMemory: opts.kvCacheMemory,
    onKvEvents,
  });
  if (opts.stepLog !== undefined) {
    const log = createWriteStream(opts.stepLog, { flags: "a" });
    engine.onStep((step) => log.write(`${JSON.stringify(step)}\n`));
  }
  return { path, model, engine, summary };
}

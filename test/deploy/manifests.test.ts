import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { bundledModelPath } from "../../src/cli/default-model.js";
import { createEngine } from "../../src/engine/create-engine.js";
import { parseKvEventsConfig } from "../../src/engine/kv-events-publisher.js";
import { loadModel } from "../../src/model/load.js";
import { listenWhileLoading } from "../../src/server/loading.js";
import type { MetricsPrefix } from "../../src/server/metrics-prefix.js";
import { buildServer } from "../../src/server/server.js";
import { runCli } from "../cli/run-cli.js";
import { scrapeMetrics, startServer } from "../server-helpers.js";

// Every manifest in deploy/kubernetes is checked against the code it deploys: the flags, ports, probe paths and
// metric names it names must be the ones vellum has.
const deployDir = join(import.meta.dirname, "..", "..", "deploy");
const manifestDir = join(deployDir, "kubernetes");

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is untyped
type Doc = any;

const docs: Doc[] = readdirSync(manifestDir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(manifestDir, file), "utf8")).map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
      return { file, ...d.toJS() };
    }),
  );
const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
const deployment = find("Deployment", "vellum");
const container = deployment.spec.template.spec.containers[0];
const args: string[] = container.args;
const flag = (name: string) => args[args.indexOf(name) + 1];
const namedPort = (name: string) =>
  container.ports.find((p: { name: string }) => p.name === name)?.containerPort as number;

/** Every string in a value but image names, and in YAML embedded in its strings (ConfigMaps), depth first. */
function strings(value: unknown): string[] {
  if (typeof value === "string") {
    const embedded = value.includes("\n") ? strings(parse(value)) : [];
    return [value, ...embedded];
  }
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === "object")
    return Object.entries(value).flatMap(([key, v]) => (key === "image" ? [] : strings(v)));
  return [];
}

describe("deploy/kubernetes", () => {
  let help: string;
  beforeAll(async () => {
    const r = await runCli(["serve", "--help"]);
    expect(r.code).toBe(0);
    help = r.stdout;
  });

  test("every document parses and names its kind; the set the deployment needs is there", () => {
    for (const d of docs) expect(d.apiVersion && d.kind && d.metadata?.name, d.file).toBeTruthy();
    const kinds = docs.map((d) => d.kind);
    for (const kind of [
      "Deployment",
      "Service",
      "PodDisruptionBudget",
      "HorizontalPodAutoscaler",
      "InferencePool",
      "ConfigMap",
    ]) {
      expect(kinds).toContain(kind);
    }
  });

  test("every flag the container passes exists in `vellum serve --help`, and the values parse", () => {
    expect(args[0]).toBe("serve");
    const flags = args.filter((a) => a.startsWith("--"));
    expect(flags.length).toBeGreaterThan(4);
    for (const f of flags) expect(help, f).toMatch(new RegExp(`\\s${f}[\\s,]`));
    // The topic names the pod through a variable the container defines (Kubernetes expands $(VAR) in args).
    expect(flag("--kv-events-config")).toContain('"topic":"kv@$(POD_IP)@');
    expect(container.env.map((e: { name: string }) => e.name)).toContain("POD_IP");
    const kv = parseKvEventsConfig(flag("--kv-events-config").replace("$(POD_IP)", "10.0.0.1"));
    expect(kv.enable_kv_cache_events).toBe(true);
    expect(Number(/:(\d+)$/.exec(kv.endpoint)?.[1])).toBe(namedPort("kv-events"));
    expect(Number(/:(\d+)$/.exec(kv.replay_endpoint ?? "")?.[1])).toBe(namedPort("kv-replay"));
  });

  test("ports: the container's, the serve default, the Service's, the InferencePool's and the image's agree", () => {
    const defaultPort = Number(/--port <port>\s+port to listen on \(default: (\d+)\)/.exec(help)?.[1]);
    expect(defaultPort).toBe(8000);
    expect(Number(flag("--port"))).toBe(defaultPort);
    expect(namedPort("http")).toBe(defaultPort);
    expect(flag("--host")).toBe("0.0.0.0");
    const service = find("Service", "vellum");
    expect(service.spec.ports[0].targetPort).toBe("http");
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    const pool = find("InferencePool", "vellum");
    expect(pool.spec.targetPorts).toEqual([{ number: defaultPort }]);
    expect(pool.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    const dockerfile = readFileSync(join(deployDir, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${defaultPort}\\b`, "m"));
    expect(dockerfile).toMatch(new RegExp(`^CMD \\[.*"--port", "${defaultPort}"\\]`, "m"));
    expect(dockerfile).toMatch(/^USER 10001$/m);
    expect(deployment.spec.template.spec.securityContext.runAsUser).toBe(10001);
    // Every stage on Node 20 slim.
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases.length).toBe(3);
    for (const base of bases) expect(base).toBe("node:20-slim");
  });

  test("the drain fits in terminationGracePeriodSeconds: preStop + --shutdown-timeout + the flush", () => {
    const preStop = container.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe("sleep");
    const total = Number(preStop[1]) + Number(flag("--shutdown-timeout")) + 0.5;
    expect(total).toBeLessThan(deployment.spec.template.spec.terminationGracePeriodSeconds);
  });

  test("the probes' paths are routes that behave: liveness 200 while loading, serving and draining; readiness only while serving", async () => {
    const live = container.livenessProbe.httpGet;
    const ready = container.readinessProbe.httpGet;
    expect(live.port).toBe("http");
    expect(ready.port).toBe("http");
    const model = loadModel(bundledModelPath);
    const loading = await listenWhileLoading("127.0.0.1", 0);
    const status = async (path: string) => (await fetch(`${loading.url}${path}`)).status;
    expect([await status(live.path), await status(ready.path)]).toEqual([200, 503]);
    const { engine } = await createEngine(model, { numBlocks: 64 });
    const server = buildServer(engine, model, { httpServer: loading.server });
    await server.app.ready();
    loading.serveWith(server.app.routing);
    expect([await status(live.path), await status(ready.path)]).toEqual([200, 200]);
    // A drain held open by a running request, so the probes are asked mid-drain; it ends when the request does.
    const body = { model: model.name, prompt: "In", max_tokens: 200, ignore_eos: true, stream: true };
    const running = await fetch(`${loading.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const reader = running.body?.getReader();
    await reader?.read();
    const closed = server.close(30_000);
    expect([await status(live.path), await status(ready.path)]).toEqual([200, 503]);
    while (!(await reader?.read())?.done);
    await closed;
    expect(loading.server.listening).toBe(false);
  });

  test("every metric the manifests name (HPA, adapter rule, endpoint picker) is exported by /metrics", async () => {
    const referenced = new Set(
      docs
        .flatMap((d) => strings(d))
        .flatMap((s) => [...s.matchAll(/\b(?:vellum|vllm):[a-z_]+/g)].map((m) => m[0])),
    );
    expect(referenced).toContain("vellum:num_requests_waiting");
    expect(referenced).toContain("vellum:kv_cache_usage_perc");
    const model = loadModel(bundledModelPath);
    const s = await startServer(model, {}, { metricsPrefix: flag("--metrics-prefix") as MetricsPrefix });
    const exported = new Set([...(await scrapeMetrics(s.url)).keys()].map((k) => k.replace(/\{.*$/, "")));
    await s.close(1000);
    for (const name of referenced) expect(exported, name).toContain(name);

    // The HPA asks for the name the adapter rule gives the series it matches.
    const rules = parse(find("ConfigMap", "vellum-prometheus-adapter-rules").data["config.yaml"]).rules;
    const hpa = find("HorizontalPodAutoscaler", "vellum");
    const metricName = hpa.spec.metrics[0].pods.metric.name;
    const rule = rules.find((r: Doc) => r.name.as === metricName);
    expect(rule).toBeDefined();
    expect([...exported].some((n) => new RegExp(rule.name.matches).test(n))).toBe(true);
    expect(hpa.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
  });

  test("the endpoint picker reads vellum's names for the pods' engine-type label", () => {
    const config = parse(find("ConfigMap", "vellum-epp-config").data["config.yaml"]);
    const extractor = config.plugins.find((p: Doc) => p.type === "core-metrics-extractor").parameters;
    const labels = deployment.spec.template.metadata.labels;
    const engine = labels[extractor.engineLabelKey];
    expect(engine).toBe("vellum");
    const specs = extractor.engineConfigs.find((c: Doc) => c.name === engine);
    expect(specs.queuedRequestsSpec).toBe("vellum:num_requests_waiting");
    // Every plugin a profile or the data layer refers to is declared.
    const declared = new Set(config.plugins.map((p: Doc) => p.name ?? p.type));
    const refs = [
      ...config.schedulingProfiles.flatMap((p: Doc) => p.plugins.map((r: Doc) => r.pluginRef)),
      ...config.dataLayer.sources.flatMap((s: Doc) => [
        s.pluginRef,
        ...s.extractors.map((e: Doc) => e.pluginRef),
      ]),
    ];
    for (const ref of refs) expect(declared).toContain(ref);
    const pool = find("InferencePool", "vellum");
    expect(find("Service", pool.spec.endpointPickerRef.name).spec.ports[0].port).toBe(
      pool.spec.endpointPickerRef.port.number,
    );
  });
});

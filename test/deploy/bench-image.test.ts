import { expect, test } from "vitest";
import { dockerUnavailable } from "../../src/bench/image.js";
import { runCli } from "../cli/run-cli.js";

// Where a Docker daemon answers, `vellum bench image` builds the image (minutes): run it by hand there.
const why = await dockerUnavailable();

test.skipIf(why === undefined)(
  "without a Docker daemon, bench image says why in one line and exits 1",
  async () => {
    const r = await runCli(["bench", "image"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([`vellum: bench image did not run: ${why}`]);
    expect(why).toMatch(/no docker client on PATH|no daemon/);
  },
);

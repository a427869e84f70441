import type { AsyncEngine } from "../engine/async-engine.js";
import type { LoadedModel } from "../model/model.js";
import type { OffThreadTokenizer } from "../model/tokenizer/off-thread.js";

/** What every handler reads: the engine, the model and the server's settings. */
export interface ServerContext {
  engine: AsyncEngine;
  model: LoadedModel;
  /** Encodes prompts; large ones off the event loop. */
  encoder: OffThreadTokenizer;
  /** Default of the request field parse_special: special-token text in a prompt string becomes tokens. */
  parseSpecial: boolean;
  /** The name clients put in `model`. */
  servedModelName: string;
  /** Most sequences waiting + running; beyond it new requests get 503. 0 = no bound. */
  maxQueue: number;
  /** Most sequences (prompts × n) one request may ask for; beyond it 400. 0 = no cap. */
  maxSeqsPerRequest: number;
  /** One controller per HTTP request that is generating; aborted when the client goes or at shutdown. */
  inflight: Set<AbortController>;
}

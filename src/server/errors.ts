import { ZodError } from "zod";
import { SamplingParamError } from "../engine/api.js";

/** OpenAI's error `type` for each status the server answers with. */
const errorTypes: Record<number, string> = {
  400: "BadRequestError",
  401: "AuthenticationError",
  403: "PermissionDeniedError",
  404: "NotFoundError",
  405: "MethodNotAllowedError",
  413: "PayloadTooLargeError",
  415: "UnsupportedMediaTypeError",
  503: "ServiceUnavailableError",
};

/** An error the client sees as `{ error: { message, type, param, code } }` with HTTP `status`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    /** Seconds for a Retry-After header (503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get body() {
    return {
      error: {
        message: this.message,
        type: errorTypes[this.status] ?? "InternalServerError",
        param: this.param,
        code: this.status,
      },
    };
  }
}

/**
 * Turns anything a handler throws into an ApiError: bad fields name their parameter, fastify's own client
 * errors (bad JSON, body too large, wrong content type) keep their status, anything else is a 500 whose
 * message says nothing of the server's internals.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    if (issue.code === "unrecognized_keys") {
      const param = [...issue.path, issue.keys[0]].join(".");
      return new ApiError(400, `${param}: vellum does not implement this field`, param);
    }
    const param = issue.path.join(".") || null;
    return new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, param);
  }
  if (err instanceof SamplingParamError) return new ApiError(400, err.message, err.apiName);
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new ApiError(status, (err as Error).message);
  }
  return new ApiError(500, "internal server error");
}

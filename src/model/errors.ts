/**
 * A problem with a user's input file. The CLI prints `message` as one line and exits 1, so the message
 * must name the file and what is wrong with it (for GGUF also the byte offset or metadata key).
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** A request field the server rejected, and why ("must be X; got Y"). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * A failed call: a ConnectError (code, rawMessage, metadata, details) whose violations are
 * the server's google.rpc.BadRequest field violations and whose reason is its
 * google.rpc.ErrorInfo reason (for example MODEL_NOT_CACHED), decoded.
 */
export class LabelwiseError extends ConnectError {
  // name stays "ConnectError", so `instanceof ConnectError` (which checks the name) holds too.
  readonly violations: readonly FieldViolation[];
  /** The google.rpc.ErrorInfo reason, or undefined when the server sent none. */
  readonly reason: string | undefined;

  constructor(error: ConnectError) {
    super(error.rawMessage, error.code, error.metadata, undefined, error);
    // ConnectError pins its own prototype; restore the subclass's for instanceof.
    Object.setPrototypeOf(this, new.target.prototype);
    this.details = error.details;
    this.violations = badRequestViolations(error);
    this.reason = errorInfoReason(error);
    const v = this.violations[0];
    if (v !== undefined && !this.rawMessage.includes(v.field)) {
      this.message = `${this.message} (field ${v.field}: ${v.description})`;
    }
  }

  /** The first violated field's path, or undefined when the server named none. */
  get field(): string | undefined {
    return this.violations[0]?.field;
  }

  /** ConnectError's own check looks at its prototype or name; this one at the chain. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  static from(reason: unknown): LabelwiseError {
    return new LabelwiseError(ConnectError.from(reason, Code.Unknown));
  }
}

const BAD_REQUEST = "google.rpc.BadRequest";
const ERROR_INFO = "google.rpc.ErrorInfo";

/** The encoded bytes of every detail of the error with the given type name. */
function detailsOf(error: ConnectError, typeName: string): Uint8Array[] {
  return error.details.flatMap((detail) => {
    const type = "desc" in detail ? detail.desc.typeName : detail.type;
    return type === typeName && "value" in detail && detail.value instanceof Uint8Array ? [detail.value] : [];
  });
}

/** The reason of the first google.rpc.ErrorInfo detail of the error. */
function errorInfoReason(error: ConnectError): string | undefined {
  for (const value of detailsOf(error, ERROR_INFO)) {
    // ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
    const reader = new BinaryReader(value);
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      if (number === 1 && wireType === WireType.LengthDelimited) return reader.string();
      reader.skip(wireType);
    }
  }
  return undefined;
}

/** The field violations of every google.rpc.BadRequest detail of the error. */
function badRequestViolations(error: ConnectError): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const value of detailsOf(error, BAD_REQUEST)) {
    // BadRequest { repeated FieldViolation field_violations = 1; }
    // FieldViolation { string field = 1; string description = 2; ... }
    const reader = new BinaryReader(value);
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      if (number !== 1 || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType);
        continue;
      }
      const item = new BinaryReader(reader.bytes());
      let field = "";
      let description = "";
      while (item.pos < item.len) {
        const [n, w] = item.tag();
        if (n === 1 && w === WireType.LengthDelimited) field = item.string();
        else if (n === 2 && w === WireType.LengthDelimited) description = item.string();
        else item.skip(w);
      }
      violations.push({ field, description });
    }
  }
  return violations;
}

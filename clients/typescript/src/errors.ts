import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** A request field the server rejected, and why ("must be X; got Y"). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * A failed call: a ConnectError (code, rawMessage, metadata, details) whose violations are
 * the server's google.rpc.BadRequest field violations, decoded.
 */
export class LabelwiseError extends ConnectError {
  // name stays "ConnectError", so `instanceof ConnectError` (which checks the name) holds too.
  readonly violations: readonly FieldViolation[];

  constructor(error: ConnectError) {
    super(error.rawMessage, error.code, error.metadata, undefined, error);
    // ConnectError pins its own prototype; restore the subclass's for instanceof.
    Object.setPrototypeOf(this, new.target.prototype);
    this.details = error.details;
    this.violations = badRequestViolations(error);
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

/** The field violations of every google.rpc.BadRequest detail of the error. */
function badRequestViolations(error: ConnectError): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const detail of error.details) {
    const type = "desc" in detail ? detail.desc.typeName : detail.type;
    if (type !== BAD_REQUEST || !("value" in detail) || !(detail.value instanceof Uint8Array)) {
      continue;
    }
    // BadRequest { repeated FieldViolation field_violations = 1; }
    // FieldViolation { string field = 1; string description = 2; ... }
    const reader = new BinaryReader(detail.value);
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

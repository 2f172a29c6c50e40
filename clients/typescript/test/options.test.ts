// The facts the client reads from the proto's generated descriptors, not from tables of its own.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { getOption, hasOption } from "@bufbuild/protobuf";

import { ErrorReason, MODEL_NOT_CACHED } from "../src/index.js";
import { labeled_axis, pool_axis } from "../src/gen/labelwise/v1/options_pb.js";
import { SelectQueriesRequestSchema, TensorSchema } from "../src/gen/labelwise/v1/query_selection_pb.js";

describe("the proto's field options", () => {
  it("declare exactly one split axis on every request tensor, kept in the generated descriptors", () => {
    const axes: Record<string, number> = {};
    for (const field of SelectQueriesRequestSchema.fields) {
      if (field.fieldKind !== "message" || field.message !== TensorSchema) continue;
      const declared = [hasOption(field, pool_axis), hasOption(field, labeled_axis)];
      assert.equal(declared.filter(Boolean).length, 1, field.name);
      axes[field.name] = getOption(field, hasOption(field, pool_axis) ? pool_axis : labeled_axis);
    }
    assert.equal(Object.keys(axes).length, 22);
    assert.equal(axes.item_weights, 0);
    assert.equal(axes.committee, 1);
    assert.equal(axes.regression_samples, 1);
    assert.equal(axes.probabilities, 0);
    assert.equal(axes.labeled_embeddings, 0);
  });

  it("name the model-not-cached reason by the ErrorReason value", () => {
    assert.equal(MODEL_NOT_CACHED, "MODEL_NOT_CACHED");
    assert.equal(ErrorReason[ErrorReason.MODEL_NOT_CACHED], MODEL_NOT_CACHED);
  });
});

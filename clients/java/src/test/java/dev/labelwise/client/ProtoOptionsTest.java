package dev.labelwise.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Descriptors.FieldDescriptor;
import dev.labelwise.v1.SelectQueriesRequest;
import dev.labelwise.v1.Tensor;
import java.util.EnumSet;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The facts the client reads from the proto's descriptors instead of tables of its own. */
class ProtoOptionsTest {
  @Test
  void everyRequestTensorIsAnInputWithTheAxisTheProtoDeclares() {
    Set<String> tensorFields = new TreeSet<>();
    for (FieldDescriptor field : SelectQueriesRequest.getDescriptor().getFields()) {
      if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE
          && field.getMessageType().equals(Tensor.getDescriptor())) {
        tensorFields.add(field.getName());
      }
    }
    Set<String> inputs = new TreeSet<>();
    for (SelectRequest.Input input : SelectRequest.Input.values()) {
      inputs.add(input.field.getName());
    }
    assertEquals(tensorFields, inputs);
    Set<SelectRequest.Input> axisOne = EnumSet.noneOf(SelectRequest.Input.class);
    for (SelectRequest.Input input : SelectRequest.Input.values()) {
      if (input.axis == 1) {
        axisOne.add(input);
      }
    }
    assertEquals(EnumSet.of(SelectRequest.Input.COMMITTEE, SelectRequest.Input.COMMITTEE_LOGITS,
        SelectRequest.Input.MULTILABEL_COMMITTEE, SelectRequest.Input.MULTILABEL_COMMITTEE_LOGITS,
        SelectRequest.Input.REGRESSION_SAMPLES, SelectRequest.Input.STRUCTURED_COMMITTEE,
        SelectRequest.Input.STRUCTURED_COMMITTEE_LOGITS), axisOne);
    assertTrue(SelectRequest.Input.LABELED_EMBEDDINGS.labeled);
    assertTrue(SelectRequest.Input.LABELED_TARGETS.labeled);
    assertFalse(SelectRequest.Input.EMBEDDINGS.labeled);
  }

  @Test
  void theModelNotCachedReasonIsTheErrorReasonName() {
    assertEquals("MODEL_NOT_CACHED", LabelwiseClient.MODEL_NOT_CACHED);
  }
}

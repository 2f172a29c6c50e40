package dev.labelwise.client;

import java.util.List;

/**
 * The answer to one {@link SelectRequest}.
 *
 * @param poolSize the number of pool items n the request carried
 * @param selections one selection per requested strategy, in request order
 */
public record SelectResponse(long poolSize, List<Selection> selections) {
  public SelectResponse {
    selections = List.copyOf(selections);
  }

  /** The selection of the first requested strategy with this name. */
  public Selection get(String name) {
    for (Selection selection : selections) {
      if (selection.name().equals(name)) {
        return selection;
      }
    }
    throw new IllegalArgumentException("no strategy " + name + " in this response");
  }
}

package dev.labelwise.client;

/**
 * A request field the server rejected, from its {@code google.rpc.BadRequest} detail.
 *
 * @param field the field's path in the request, such as {@code temperature} or
 *     {@code strategies[1].params.nope}
 * @param description what it must be, and what it got
 */
public record FieldViolation(String field, String description) {}

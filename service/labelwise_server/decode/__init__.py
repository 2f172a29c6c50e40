"""Decoders, one per input family: the request's wire tensors in, checked arrays out.

Each decoder reads its own fields through a Fields and checks their shapes and values,
raising InvalidArgument with the field, what it must be and what it got. How the families
agree with each other (one pool size n, d, l) and what the strategies need is checked by
labelwise_server.validation, which calls them in order. Nothing here runs a model.
"""

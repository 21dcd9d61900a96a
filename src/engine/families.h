/* The built-in op families, one per file in ops/, in registration order.
 * Included with TG_FAMILY(name) defined; each file defines name_ops[] and
 * name_count. */
TG_FAMILY(tg_binary)
TG_FAMILY(tg_unary)
TG_FAMILY(tg_linalg)
TG_FAMILY(tg_reduce)
TG_FAMILY(tg_loss)
TG_FAMILY(tg_softmax)

TG_FAMILY(tg_compare)

TG_FAMILY(tg_select)

TG_FAMILY(tg_shape)

TG_FAMILY(tg_activation)

TG_FAMILY(tg_lapack)

/* The circuit f = (x + y) * z: its value and its gradient by one reverse sweep. */
#include <stdio.h>
#include <tapegrad.h>

int main(void) {
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    tg_node *x = tg_scalar(t, -2), *y = tg_scalar(t, 5), *z = tg_scalar(t, -4);
    tg_node *f = tg_mul(tg_add(x, y), z);
    tg_backward(f);
    if (tg_status(t)) {
        fprintf(stderr, "error: %s\n", tg_status_message(t));
        tg_tape_free(t);
        return 1;
    }
    printf("f = %g\n", tg_value_scalar(f));
    printf("df/dx = %g\ndf/dy = %g\ndf/dz = %g\n", tg_grad_scalar(x), tg_grad_scalar(y),
           tg_grad_scalar(z));
    tg_tape_free(t);
    return 0;
}

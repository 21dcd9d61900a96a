/*
 * Fuzz target: the model-file (checkpoint) loader. Input: a flag byte, then
 * the file. With flag bit 0 clear the harness first makes the file's
 * declared size (bytes 24..31) and CRC32 (last 4 bytes) right, so that the
 * fuzzer gets past the checksum into the structure checks; with it set the
 * bytes are written as they are. A model that loads is saved again, read
 * back and compared bit for bit, and loaded into its own copy with
 * tg_checkpoint_load; a file that does not load must not touch the store it
 * was loaded into. A file that reads as a training checkpoint
 * (tg_training_read) restores into an optimiser of its configuration over
 * the model, saves again and reads back with the same settings text; one
 * that does not has a message.
 */
#include "fuzz_util.h"

#include "tapegrad.h"

static void put64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i);
}

static int same_values(const tg_params *a, const tg_params *b) {
    if (tg_params_count(a) != tg_params_count(b) || tg_params_dtype(a) != tg_params_dtype(b) ||
        tg_params_size(a) != tg_params_size(b))
        return 0;
    size_t es = tg_params_dtype(a) == TG_F64 ? 8 : 4, n = (size_t)tg_params_size(a) * es;
    return (!n || !memcmp(tg_params_data(a), tg_params_data(b), n)) &&
           !strcmp(tg_params_meta(a), tg_params_meta(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    data++, size--;
    uint8_t *file = malloc(size ? size : 1);
    if (!file) abort();
    memcpy(file, data, size);
    if (!(flags & 1) && size >= 36) {
        put64le(file + 24, size);
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), file, (uInt)(size - 4));
        for (int i = 0; i < 4; i++) file[size - 4 + i] = (uint8_t)(crc >> 8 * i);
    }
    const char *path = fuzz_path(0, "model.tgm"), *again = fuzz_path(1, "again.tgm");
    fuzz_write(path, file, size, 0);
    free(file);

    tg_error err;
    memset(&err, 0, sizeof err);
    tg_params *ps = tg_checkpoint_read(path, &err);
    if (!ps) {
        if (!err.code || !err.message[0]) abort();
        /* Loading the bad file into a store leaves the store as it was. */
        tg_params *q = tg_params_new(TG_F32);
        const int64_t shape[1] = {3};
        if (!q || tg_params_add(q, "w", 1, shape, NULL)) abort();
        ((float *)tg_params_value(q, 0))[1] = 42;
        if (tg_checkpoint_load(q, path, &err) == TG_OK ||
            ((float *)tg_params_value(q, 0))[1] != 42)
            abort();
        tg_params_free(q);
        return 0;
    }
    tg_training *t = tg_training_read(path, &err);
    if (!t && (!err.code || !err.message[0])) abort();
    if (t) {
        tg_optim_config c = tg_training_optim(t);
        tg_optim *o = tg_optim_new(ps, &c, NULL);
        tg_train_position pos;
        if (o && tg_training_restore(t, ps, o, &pos, &err) == TG_OK) {
            if (tg_training_save(ps, o, &pos, tg_training_settings(t), again, &err)) abort();
            tg_training *u = tg_training_read(again, &err);
            if (!u || strcmp(tg_training_settings(u), tg_training_settings(t))) abort();
            tg_training_free(u);
        }
        tg_optim_free(o);
        tg_training_free(t);
    }
    if (tg_checkpoint_save(ps, again, &err)) abort();
    tg_params *back = tg_checkpoint_read(again, &err);
    if (!back || !same_values(ps, back)) abort();
    size_t bytes = (size_t)tg_params_size(back) * (tg_params_dtype(back) == TG_F64 ? 8 : 4);
    if (bytes) memset(tg_params_data(back), 0, bytes);
    if (tg_checkpoint_load(back, path, &err) || !same_values(ps, back)) abort();
    tg_params_free(back);
    tg_params_free(ps);
    return 0;
}

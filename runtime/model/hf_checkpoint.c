/* hf_checkpoint.c — Hugging Face checkpoint directories: config.json plus model.safetensors, or shards listed in
 * model.safetensors.index.json ("weight_map": tensor -> file), read into (and written from) the model's flat
 * parameter buffer under LlamaForCausalLM tensor names. F32, BF16 and F16 tensors load; we write F32. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "model/model.h"
#include "model/model_internal.h"
#include "util/error.h"

#define MAX_SHARDS 64

struct shard_set {
    char *names[MAX_SHARDS];      /* file names relative to the directory */
    struct st_file files[MAX_SHARDS];
    int n;
};

static void shards_close(struct shard_set *s)
{
    for (int i = 0; i < s->n; i++) {
        st_close(&s->files[i]);
        free(s->names[i]);
    }
    s->n = 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Opens every shard named by the index (each once), or the single model.safetensors. */
static int shards_open(struct shard_set *s, const char *dir)
{
    char path[4096];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!file_exists(path)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!file_exists(path))
            return err_set(CIRCD_EINPUT, "%s: no model.safetensors or model.safetensors.index.json found", dir);
        s->names[0] = strdup("model.safetensors");
        s->n = 1;
        int rc = s->names[0] ? st_open(&s->files[0], path) : err_set(CIRCD_ENOMEM, "out of memory");
        if (rc) shards_close(s);
        return rc;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return err_set(CIRCD_EINPUT, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column, jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    int rc = CIRCD_OK;
    if (!json_is_object(map)) {
        rc = err_set(CIRCD_EINPUT, "%s: field \"weight_map\" missing or not an object (tensor name -> file)", path);
        goto done;
    }
    const char *tensor;
    json_t *file;
    json_object_foreach(map, tensor, file) {
        const char *fname = json_string_value(file);
        if (!fname || strchr(fname, '/')) {
            rc = err_set(CIRCD_EINPUT, "%s: weight_map[\"%s\"] must be a file name in the same directory", path,
                         tensor);
            goto done;
        }
        int known = 0;
        for (int i = 0; i < s->n; i++) known |= strcmp(s->names[i], fname) == 0;
        if (known) continue;
        if (s->n == MAX_SHARDS) {
            rc = err_set(CIRCD_EINPUT, "%s: more than %d shard files", path, MAX_SHARDS);
            goto done;
        }
        char shard_path[4096];
        snprintf(shard_path, sizeof shard_path, "%s/%s", dir, fname);
        s->names[s->n] = strdup(fname);
        if (!s->names[s->n]) { rc = err_set(CIRCD_ENOMEM, "out of memory"); goto done; }
        rc = st_open(&s->files[s->n], shard_path);
        s->n++;
        if (rc) goto done;
    }
done:
    json_decref(root);
    if (rc) shards_close(s);
    return rc;
}

static int find_in_shards(const struct shard_set *s, const char *name, const struct st_file **file)
{
    for (int i = 0; i < s->n; i++)
        if (st_find(&s->files[i], name)) { *file = &s->files[i]; return 1; }
    return 0;
}

/* Tensors that checkpoints may carry and that hold nothing we need (RoPE buffers of older transformers). */
static int ignorable(const char *name)
{
    const char *suffix = "rotary_emb.inv_freq";
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

int model_load_hf(struct llama_model *m, const char *dir)
{
    char path[4096];
    struct llama_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = hf_config_read(&cfg, path);
    if (rc) return rc;
    if ((rc = model_create(m, &cfg))) return err_prefix(rc, "%s: ", path);
    struct shard_set shards;
    if ((rc = shards_open(&shards, dir))) { model_free(m); return rc; }

    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const struct param_tensor *t = &m->tensors[i];
        const struct st_file *f;
        if (!find_in_shards(&shards, t->name, &f)) {
            char shape_text[64];
            int64_t shape[2] = {t->shape[0], t->shape[1]};
            st_format_shape(shape_text, sizeof shape_text, t->ndim, shape);
            rc = err_set(CIRCD_EINPUT, "%s: tensor \"%s\" is missing (expected a float tensor of shape %s)", dir,
                         t->name, shape_text);
            break;
        }
        int64_t shape[2] = {t->shape[0], t->shape[1]};
        rc = st_read_f32(f, t->name, t->ndim, shape, m->params + t->offset);
    }
    /* Every tensor in the files must be one we know: a stray tensor means a different architecture. */
    for (int s = 0; s < shards.n && !rc; s++) {
        const struct st_file *f = &shards.files[s];
        for (size_t k = 0; k < f->n_tensors && !rc; k++) {
            const char *name = f->tensors[k].name;
            if (model_find_tensor(m, name) || ignorable(name)) continue;
            if (cfg.tie_embeddings && strcmp(name, "lm_head.weight") == 0) {
                /* Some tied checkpoints store the head anyway; accept it only if it is the embedding. */
                size_t n = (size_t)cfg.vocab_size * cfg.d_model;
                float *head = malloc(n * sizeof(float));
                int64_t shape[2] = {cfg.vocab_size, cfg.d_model};
                if (!head) { rc = err_set(CIRCD_ENOMEM, "out of memory"); break; }
                rc = st_read_f32(f, name, 2, shape, head);
                if (!rc && memcmp(head, m->w.embed, n * sizeof(float)) != 0)
                    rc = err_set(CIRCD_EINPUT,
                                 "%s: tensor \"lm_head.weight\" differs from model.embed_tokens.weight but "
                                 "config.json says tie_word_embeddings: true",
                                 f->origin);
                free(head);
                continue;
            }
            rc = err_set(CIRCD_EINPUT, "%s: unexpected tensor \"%s\" (not part of a LlamaForCausalLM with this "
                         "config.json)", f->origin, name);
        }
    }
    shards_close(&shards);
    if (rc) model_free(m);
    return rc;
}

int model_save_hf(const struct llama_model *m, const char *dir)
{
    char path[4096];
    if (mkdir(dir, 0777) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return err_set(CIRCD_EIO, "%s: cannot create the checkpoint directory", dir);
    }
    int rc = model_device_download(m); /* the host copies are what is written */
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = hf_config_write(&m->config, path))) return rc;
    struct st_writer w;
    st_writer_init(&w);
    rc = st_writer_add_meta(&w, "format", "pt");
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const struct param_tensor *t = &m->tensors[i];
        int64_t shape[2] = {t->shape[0], t->shape[1]};
        rc = st_writer_add(&w, t->name, ST_F32, t->ndim, shape, m->params + t->offset);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = st_writer_write(&w, path);
    st_writer_free(&w);
    return rc;
}

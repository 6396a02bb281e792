/* ward.c: the exports of `ward:plugin` (world `plugin`) over the tables of
 * ward.h, on the C bindings `wit-bindgen c` generates (plugin.h).
 *
 * The canonical-ABI ownership rules of those bindings, kept here:
 * - an exported function owns its arguments (the host allocated them with
 *   `cabi_realloc`): it frees them, with the generated `*_free` helpers;
 * - everything an exported function returns must be malloc'd: once ward has
 *   copied the result out, the generated `cabi_post_*` function frees every
 *   string and list whose length is not 0. So every string returned here is
 *   a copy (never a literal), and an empty one is {NULL, 0}.
 */
#include "ward.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plugin.h"

/* A plugin without resources leaves WARD_RESOURCES out. (Tools have no such
 * default: a plugin without WARD_TOOLS fails to link.) */
__attribute__((weak)) const ward_resource *ward_plugin_resources(size_t *count) {
    *count = 0;
    return NULL;
}

/* ---- Allocation ------------------------------------------------------ */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) abort();
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

/* printf into a malloc'd string. */
static char *vformat(const char *format, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n < 0) return xstrdup("(format error)");
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, format, ap);
    return s;
}

/* Takes over a malloc'd NUL-terminated string as a component string. */
static plugin_string_t own(char *s) {
    plugin_string_t out = {(uint8_t *)s, strlen(s)};
    if (out.len == 0) {
        free(s);
        out.ptr = NULL;
    }
    return out;
}

/* A malloc'd copy of `s` as a component string. */
static plugin_string_t copy(const char *s) { return own(xstrdup(s ? s : "")); }

static plugin_option_string_t copy_opt(const char *s) {
    plugin_option_string_t out = {0};
    if (s) {
        out.is_some = true;
        out.val = copy(s);
    }
    return out;
}

/* A component string as a malloc'd NUL-terminated copy. */
static char *cstr(const plugin_string_t *s) {
    char *out = xmalloc(s->len + 1);
    if (s->len) memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

static bool equals(const plugin_string_t *s, const char *c) {
    size_t n = strlen(c);
    return s->len == n && (n == 0 || memcmp(s->ptr, c, n) == 0);
}

static ward_plugin_types_error_t error_of(uint8_t tag, char *message) {
    ward_plugin_types_error_t err;
    memset(&err, 0, sizeof err);
    err.tag = tag;
    /* All three cases hold a string at the same place. */
    err.val.failed = own(message);
    return err;
}

static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

/* ---- Replies --------------------------------------------------------- */

struct ward_reply {
    exports_ward_plugin_tools_content_t *content;
    size_t len, cap;
    char *structured;
    bool is_error;
    /* An `error` (not an isError result): 0, or 1 + its WIT tag. */
    int error;
    char *error_message;
};

static void push_text(ward_reply *r, char *text) {
    if (r->len == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->content = xrealloc(r->content, r->cap * sizeof *r->content);
    }
    exports_ward_plugin_tools_content_t *c = &r->content[r->len++];
    memset(c, 0, sizeof *c);
    c->tag = WARD_PLUGIN_TYPES_CONTENT_TEXT;
    c->val.text = own(text);
}

void ward_text(ward_reply *reply, const char *text) { push_text(reply, xstrdup(text ? text : "")); }

void ward_textf(ward_reply *reply, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push_text(reply, vformat(fmt, ap));
    va_end(ap);
}

void ward_structured(ward_reply *reply, const char *json) {
    free(reply->structured);
    reply->structured = xstrdup(json);
}

void ward_fail(ward_reply *reply, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push_text(reply, vformat(fmt, ap));
    va_end(ap);
    reply->is_error = true;
}

void ward_invalid(ward_reply *reply, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(reply->error_message);
    reply->error_message = vformat(fmt, ap);
    va_end(ap);
    reply->error = 1 + WARD_PLUGIN_TYPES_ERROR_INVALID_PARAMS;
}

static void reply_free(ward_reply *r) {
    for (size_t i = 0; i < r->len; i++) ward_plugin_types_content_free(&r->content[i]);
    free(r->content);
    free(r->structured);
    free(r->error_message);
}

/* ---- JSON (just enough to read a tool's arguments) -------------------- */

#define MAX_DEPTH 64

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses the string at `p` (at its opening quote). With `out`, decodes it
 * into a malloc'd string. Returns the end of the string, or NULL. */
static const char *parse_string(const char *p, char **out) {
    if (*p != '"') return NULL;
    p++;
    /* The decoded text is never longer than the escaped one. */
    const char *end = p;
    while (*end && *end != '"') end += (*end == '\\' && end[1]) ? 2 : 1;
    if (*end != '"') return NULL;
    char *buf = out ? xmalloc((size_t)(end - p) + 1) : NULL;
    size_t n = 0;
    while (p < end) {
        char c = *p++;
        if (c != '\\') {
            if (buf) buf[n++] = c;
            continue;
        }
        char e = *p++;
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': {
            if (end - p < 4) goto bad;
            int hi = hex4(p);
            if (hi < 0) goto bad;
            p += 4;
            uint32_t cp = (uint32_t)hi;
            if (hi >= 0xD800 && hi <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate */
            if (buf) n += put_utf8(buf + n, cp);
            continue;
        }
        default: goto bad;
        }
        if (buf) buf[n++] = simple;
    }
    if (buf) {
        buf[n] = '\0';
        *out = buf;
    }
    return end + 1;
bad:
    free(buf);
    return NULL;
}

/* Skips the value at `p`; returns its end, or NULL if it is not JSON. */
static const char *skip_value(const char *p, int depth) {
    p = skip_ws(p);
    if (depth > MAX_DEPTH) return NULL;
    if (*p == '"') return parse_string(p, NULL);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = parse_string(skip_ws(p), NULL);
                if (!p) return NULL;
                p = skip_ws(p);
                if (*p++ != ':') return NULL;
            }
            p = skip_value(p, depth + 1);
            if (!p) return NULL;
            p = skip_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    const char *start = p;
    while (*p && strchr("+-.0123456789eEtruefalsn", *p)) p++;
    return p > start ? p : NULL;
}

/* The value of member `key` of the object `json`, or NULL. */
static const char *member(const char *json, const char *key) {
    if (!json) return NULL;
    const char *p = skip_ws(json);
    if (*p++ != '{') return NULL;
    p = skip_ws(p);
    if (*p == '}') return NULL;
    for (;;) {
        char *name = NULL;
        p = parse_string(skip_ws(p), &name);
        if (!p) return NULL;
        bool found = strcmp(name, key) == 0;
        free(name);
        p = skip_ws(p);
        if (*p++ != ':') return NULL;
        p = skip_ws(p);
        if (found) return p;
        p = skip_value(p, 1);
        if (!p) return NULL;
        p = skip_ws(p);
        if (*p++ != ',') return NULL;
    }
}

char *ward_json_string(const char *json, const char *key) {
    const char *v = member(json, key);
    char *out = NULL;
    if (v && *v == '"' && parse_string(v, &out)) return out;
    return NULL;
}

bool ward_json_number(const char *json, const char *key, double *out) {
    const char *v = member(json, key);
    if (!v || !(*v == '-' || (*v >= '0' && *v <= '9'))) return false;
    char *end;
    double d = strtod(v, &end);
    if (end == v) return false;
    *out = d;
    return true;
}

bool ward_json_bool(const char *json, const char *key, bool *out) {
    const char *v = member(json, key);
    if (v && strncmp(v, "true", 4) == 0) {
        *out = true;
        return true;
    }
    if (v && strncmp(v, "false", 5) == 0) {
        *out = false;
        return true;
    }
    return false;
}

char *ward_json_quote(const char *s) {
    size_t n = 2;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p == '"' || *p == '\\') ? 2 : (*p < 0x20 ? 6 : 1);
    char *out = xmalloc(n + 1), *o = out;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20) {
            o += snprintf(o, 7, "\\u%04x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* ---- Host ------------------------------------------------------------ */

void ward_log(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    plugin_string_t message = own(vformat(fmt, ap));
    va_end(ap);
    if (level < WARD_LOG_DEBUG) level = WARD_LOG_DEBUG;
    if (level > WARD_LOG_EMERGENCY) level = WARD_LOG_EMERGENCY;
    /* Imports borrow their arguments: the string stays ours. */
    ward_plugin_host_log((ward_plugin_host_log_level_t)level, &message);
    plugin_string_free(&message);
}

bool ward_cancelled(void) { return ward_plugin_host_cancelled(); }

/* ---- Export: tools --------------------------------------------------- */

static plugin_option_bool_t hint(unsigned hints, unsigned flag) {
    plugin_option_bool_t out = {0};
    if (hints & flag) {
        out.is_some = true;
        out.val = true;
    }
    return out;
}

void exports_ward_plugin_tools_list_tools(exports_ward_plugin_tools_list_tool_t *ret) {
    size_t n;
    const ward_tool *tools = ward_plugin_tools(&n);
    ret->len = n;
    ret->ptr = n ? xmalloc(n * sizeof *ret->ptr) : NULL;
    for (size_t i = 0; i < n; i++) {
        const ward_tool *t = &tools[i];
        exports_ward_plugin_tools_tool_t *out = &ret->ptr[i];
        memset(out, 0, sizeof *out);
        out->name = copy(t->name);
        out->title = copy_opt(t->title);
        out->description = copy(t->description);
        out->input_schema = copy(t->input_schema ? t->input_schema : "{\"type\": \"object\"}");
        if (t->output_schema) {
            out->output_schema.is_some = true;
            out->output_schema.val = copy(t->output_schema);
        }
        if (t->hints) {
            out->annotations.is_some = true;
            out->annotations.val.read_only = hint(t->hints, WARD_READ_ONLY);
            out->annotations.val.destructive = hint(t->hints, WARD_DESTRUCTIVE);
            out->annotations.val.idempotent = hint(t->hints, WARD_IDEMPOTENT);
            out->annotations.val.open_world = hint(t->hints, WARD_OPEN_WORLD);
        }
    }
}

bool exports_ward_plugin_tools_call_tool(plugin_string_t *name, exports_ward_plugin_tools_json_t *arguments,
                                         exports_ward_plugin_tools_tool_result_t *ret,
                                         exports_ward_plugin_tools_error_t *err) {
    size_t n;
    const ward_tool *tools = ward_plugin_tools(&n), *tool = NULL;
    for (size_t i = 0; i < n && !tool; i++)
        if (equals(name, tools[i].name)) tool = &tools[i];
    if (!tool) {
        char *n = cstr(name);
        *err = error_of(WARD_PLUGIN_TYPES_ERROR_NOT_FOUND, format("no tool named %s", n));
        free(n);
        plugin_string_free(name);
        exports_ward_plugin_tools_json_free(arguments);
        return false;
    }
    char *args = cstr(arguments);
    plugin_string_free(name);
    exports_ward_plugin_tools_json_free(arguments);

    ward_reply reply;
    memset(&reply, 0, sizeof reply);
    tool->fn(args, &reply);
    free(args);

    if (reply.error) {
        *err = error_of((uint8_t)(reply.error - 1), reply.error_message);
        reply.error_message = NULL;
        reply_free(&reply);
        return false;
    }
    memset(ret, 0, sizeof *ret);
    ret->content.ptr = reply.len ? reply.content : NULL;
    ret->content.len = reply.len;
    if (!reply.len) free(reply.content);
    if (reply.structured) {
        ret->structured.is_some = true;
        ret->structured.val = own(reply.structured);
    }
    ret->is_error = reply.is_error;
    return true;
}

/* ---- Export: resources ----------------------------------------------- */

void exports_ward_plugin_resources_list_resources(exports_ward_plugin_resources_list_resource_t *ret) {
    size_t n;
    const ward_resource *resources = ward_plugin_resources(&n);
    ret->len = n;
    ret->ptr = n ? xmalloc(n * sizeof *ret->ptr) : NULL;
    for (size_t i = 0; i < n; i++) {
        const ward_resource *r = &resources[i];
        exports_ward_plugin_resources_resource_t *out = &ret->ptr[i];
        memset(out, 0, sizeof *out);
        out->uri = copy(r->uri);
        out->name = copy(r->name);
        out->title = copy_opt(r->title);
        out->description = copy_opt(r->description);
        out->mime_type = copy_opt(r->mime_type);
        if (r->text && !r->read) {
            out->size.is_some = true;
            out->size.val = strlen(r->text);
        }
    }
}

void exports_ward_plugin_resources_list_resource_templates(
    exports_ward_plugin_resources_list_resource_template_t *ret) {
    ret->ptr = NULL;
    ret->len = 0;
}

bool exports_ward_plugin_resources_read_resource(plugin_string_t *uri,
                                                 exports_ward_plugin_resources_list_resource_contents_t *ret,
                                                 exports_ward_plugin_resources_error_t *err) {
    char *u = cstr(uri);
    plugin_string_free(uri);
    size_t n;
    const ward_resource *resources = ward_plugin_resources(&n), *r = NULL;
    for (size_t i = 0; i < n && !r; i++)
        if (strcmp(resources[i].uri, u) == 0) r = &resources[i];
    char *text = NULL;
    if (r) text = r->read ? r->read(u) : xstrdup(r->text ? r->text : "");
    if (!text) {
        *err = error_of(WARD_PLUGIN_TYPES_ERROR_NOT_FOUND, format("no resource at %s", u));
        free(u);
        return false;
    }
    exports_ward_plugin_resources_resource_contents_t *c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->uri = own(u);
    c->mime_type = copy_opt(r->mime_type);
    c->body.tag = WARD_PLUGIN_TYPES_RESOURCE_BODY_TEXT;
    c->body.val.text = own(text);
    ret->ptr = c;
    ret->len = 1;
    return true;
}

/* ---- Exports: prompts and completions (none) ------------------------- */

void exports_ward_plugin_prompts_list_prompts(exports_ward_plugin_prompts_list_prompt_t *ret) {
    ret->ptr = NULL;
    ret->len = 0;
}

bool exports_ward_plugin_prompts_get_prompt(plugin_string_t *name, plugin_list_tuple2_string_string_t *arguments,
                                            exports_ward_plugin_prompts_prompt_result_t *ret,
                                            exports_ward_plugin_prompts_error_t *err) {
    (void)ret;
    char *n = cstr(name);
    *err = error_of(WARD_PLUGIN_TYPES_ERROR_NOT_FOUND, format("no prompt named %s", n));
    free(n);
    plugin_string_free(name);
    plugin_list_tuple2_string_string_free(arguments);
    return false;
}

bool exports_ward_plugin_completions_complete(exports_ward_plugin_completions_reference_t *target,
                                              plugin_string_t *argument, plugin_string_t *value,
                                              plugin_list_tuple2_string_string_t *context,
                                              exports_ward_plugin_completions_completion_t *ret,
                                              exports_ward_plugin_completions_error_t *err) {
    (void)err;
    exports_ward_plugin_completions_reference_free(target);
    plugin_string_free(argument);
    plugin_string_free(value);
    plugin_list_tuple2_string_string_free(context);
    memset(ret, 0, sizeof *ret);
    ret->total.is_some = true;
    ret->total.val = 0;
    ret->has_more = false;
    return true;
}

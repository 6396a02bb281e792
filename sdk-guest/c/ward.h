/* ward.h: write a ward plugin in C.
 *
 * A plugin is a table of tools (and, optionally, one of resources). A tool is
 * a C function; its JSON Schema is a string:
 *
 *     #include "ward.h"
 *
 *     static void greet(const char *args, ward_reply *reply) {
 *         char *name = ward_json_string(args, "name");
 *         ward_textf(reply, "Hello, %s!", name);
 *         free(name);
 *     }
 *
 *     static const ward_tool tools[] = {
 *         {.name = "greet",
 *          .description = "Greets someone by name",
 *          .input_schema = "{\"type\": \"object\", \"properties\": {\"name\": "
 *                          "{\"type\": \"string\"}}, \"required\": [\"name\"]}",
 *          .fn = greet,
 *          .hints = WARD_READ_ONLY},
 *     };
 *     WARD_TOOLS(tools);
 *
 * ward.c implements the WIT exports of `ward:plugin` (world `plugin`) over
 * these tables, on top of the C bindings that `wit-bindgen c` generates from
 * ward's wit/ (`plugin.h`, `plugin.c`, `plugin_component_type.o`; `cargo
 * xtask plugins` generates and links them). Prompts and completions are
 * answered as empty.
 *
 * Memory: everything a plugin hands to these functions is copied, so string
 * literals, stack buffers and your own heap strings are all fine (free your
 * own). Strings these functions return to you (`ward_json_string`,
 * `ward_json_quote`) are malloc'd: free them. A `ward_read_fn` returns a
 * malloc'd string that ward.c takes over. The canonical-ABI rules of the
 * generated bindings (arguments owned by the callee, results malloc'd and
 * freed by the `cabi_post_*` functions after ward copies them) are kept in
 * ward.c, so a plugin never sees them.
 *
 * ward validates every call's arguments against the tool's `input_schema`
 * before the plugin runs, so a tool may rely on it: a required string
 * property is there and is a string.
 */
#ifndef WARD_H
#define WARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a tool builds its answer into (opaque). */
typedef struct ward_reply ward_reply;

/* A tool: `args` is the call's arguments, a JSON object as NUL-terminated
 * text, already validated against the tool's `input_schema`. The tool adds
 * content to `reply` (ward_text, ward_textf, ward_structured) or says it
 * failed (ward_fail, ward_invalid). */
typedef void (*ward_tool_fn)(const char *args, ward_reply *reply);

/* Hints about a tool (MCP `ToolAnnotations`), or'ed into `ward_tool.hints`.
 * A hint not given is left unsaid. */
enum {
    WARD_READ_ONLY = 1 << 0,
    WARD_DESTRUCTIVE = 1 << 1,
    WARD_IDEMPOTENT = 1 << 2,
    WARD_OPEN_WORLD = 1 << 3,
};

typedef struct ward_tool {
    /* `^[a-zA-Z0-9_-]{1,64}$`; ward exposes it as `<plugin>_<name>`. */
    const char *name;
    /* What the tool does, for the model. */
    const char *description;
    /* A JSON Schema (an object schema) for the arguments, as JSON text. */
    const char *input_schema;
    ward_tool_fn fn;
    /* Optional (NULL): a human-readable title. */
    const char *title;
    /* Optional (NULL): a JSON Schema for what ward_structured gives. */
    const char *output_schema;
    /* WARD_READ_ONLY | WARD_IDEMPOTENT | ... */
    unsigned hints;
} ward_tool;

/* Reads a resource: returns its text, malloc'd (ward.c frees it), or NULL
 * when there is nothing at `uri` (the client gets `not-found`). */
typedef char *(*ward_read_fn)(const char *uri);

typedef struct ward_resource {
    const char *uri;
    const char *name;
    /* Optional (NULL). */
    const char *description;
    /* Optional (NULL), e.g. "text/plain". */
    const char *mime_type;
    /* The resource's text, if it is fixed; otherwise `read` computes it. */
    const char *text;
    ward_read_fn read;
    /* Optional (NULL). */
    const char *title;
} ward_resource;

/* The tables ward.c serves: WARD_TOOLS and WARD_RESOURCES (once each, at
 * file scope, on a static array) define these functions. A plugin without
 * resources leaves WARD_RESOURCES out. (They are functions, not constants,
 * because ward.c's default for resources is weak, and clang folds the value
 * of a weak constant.) */
const ward_tool *ward_plugin_tools(size_t *count);
const ward_resource *ward_plugin_resources(size_t *count);

#define WARD_TOOLS(table)                                  \
    const ward_tool *ward_plugin_tools(size_t *count) {    \
        *count = sizeof(table) / sizeof((table)[0]);       \
        return (table);                                    \
    }                                                      \
    struct ward_tools_semicolon

#define WARD_RESOURCES(table)                                      \
    const ward_resource *ward_plugin_resources(size_t *count) {    \
        *count = sizeof(table) / sizeof((table)[0]);               \
        return (table);                                            \
    }                                                              \
    struct ward_resources_semicolon

/* ---- Answers (each copies its arguments) ---------------------------- */

/* Adds a text content block. */
void ward_text(ward_reply *reply, const char *text);
/* Adds a text content block, printf-style. */
void ward_textf(ward_reply *reply, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the structured result (MCP `structuredContent`): JSON text matching
 * the tool's `output_schema`. */
void ward_structured(ward_reply *reply, const char *json);
/* The tool ran but failed: an `isError` result that says why, printf-style. */
void ward_fail(ward_reply *reply, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The arguments are wrong in a way the schema cannot say (out of range,
 * say): the `invalid-params` error, printf-style. */
void ward_invalid(ward_reply *reply, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- Reading the arguments ------------------------------------------ */

/* The string member `key` of the JSON object `json`, decoded (escapes and
 * `\uXXXX` become UTF-8), malloc'd and NUL-terminated: free it. NULL when
 * the member is missing or not a string. (A decoded `\u0000` ends the C
 * string early.) */
char *ward_json_string(const char *json, const char *key);
/* The number member `key` into `*out`; false when missing or not a number. */
bool ward_json_number(const char *json, const char *key, double *out);
/* The boolean member `key` into `*out`; false when missing or not a bool. */
bool ward_json_bool(const char *json, const char *key, bool *out);
/* `s` as a JSON string literal, quotes included, malloc'd: for building
 * JSON text with `snprintf`. Free it. */
char *ward_json_quote(const char *s);

/* ---- The host -------------------------------------------------------- */

/* MCP log levels, least severe first (`ward:plugin/host.log-level`). */
enum {
    WARD_LOG_DEBUG,
    WARD_LOG_INFO,
    WARD_LOG_NOTICE,
    WARD_LOG_WARNING,
    WARD_LOG_ERROR,
    WARD_LOG_CRITICAL,
    WARD_LOG_ALERT,
    WARD_LOG_EMERGENCY,
};

/* Logs a message, printf-style (ward's log, and the client if it asked). */
void ward_log(int level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* True once the client has cancelled the current request. */
bool ward_cancelled(void);

#ifdef __cplusplus
}
#endif

#endif /* WARD_H */

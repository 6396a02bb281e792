/* c-hello: an example ward plugin written in C, on sdk-guest/c/ward.h.
 *
 * Build: cargo xtask plugins   (-> target/plugins/c-hello.wasm): wit-bindgen's
 *        C bindings for wit/, Debian's clang and wasi-libc, wasm-component-ld.
 * Run:   ward serve --plugins target/plugins; the tool is `c-hello_greet`, the
 *        resource `c-hello://about`. A policy with `[env] GREETING = "Howdy"`
 *        changes the greeting, as for the Rust `hello`.
 */
#include <stdlib.h>

#include "ward.h"

static void greet(const char *args, ward_reply *reply) {
    /* ward validated the arguments against the schema: `name` is a string. */
    char *name = ward_json_string(args, "name");
    const char *greeting = getenv("GREETING");
    ward_textf(reply, "%s, %s!", greeting && *greeting ? greeting : "Hello", name ? name : "");
    free(name);
}

static const ward_tool tools[] = {
    {
        .name = "greet",
        .description = "Greets someone by name",
        .input_schema = "{\"type\": \"object\","
                        " \"properties\": {\"name\": {\"type\": \"string\", \"description\": \"Who to greet.\"}},"
                        " \"required\": [\"name\"]}",
        .fn = greet,
        .hints = WARD_READ_ONLY | WARD_IDEMPOTENT,
    },
};
WARD_TOOLS(tools);

static const ward_resource resources[] = {
    {
        .uri = "c-hello://about",
        .name = "about",
        .description = "What this plugin is",
        .mime_type = "text/plain",
        .text = "c-hello is a ward plugin written in C: a table of tools and resources "
                "(sdk-guest/c/ward.h) over the C bindings wit-bindgen generates from ward's WIT, "
                "compiled by clang with wasi-libc into a WebAssembly component.\n",
    },
};
WARD_RESOURCES(resources);

/* {{name}}: a ward plugin in C, on ward.h (a tool is a function, its schema
 * a string). Build: ./build.sh -> dist/{{name}}.wasm. */
#include <stdlib.h>

#include "ward.h"

static void greet(const char *args, ward_reply *reply) {
    /* ward validated the arguments against the schema: `name` is a string. */
    char *name = ward_json_string(args, "name");
    ward_textf(reply, "Hello, %s!", name ? name : "");
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

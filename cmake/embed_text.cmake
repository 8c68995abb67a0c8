# Turns a text file into a C source defining `const char NAME[]` with its bytes, so the binary
# carries it (credsync init writes config/example.yaml's defaults, never a copy that drifts).
# Invoked as: cmake -DIN=... -DNAME=... -DOUT=... -P embed_text.cmake
file(READ "${IN}" text HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," text "${text}")
set(body "/* generated from ${IN} by cmake/embed_text.cmake: do not edit */\n")
string(APPEND body "extern const char ${NAME}[];\nconst char ${NAME}[] = {${text}0x00};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

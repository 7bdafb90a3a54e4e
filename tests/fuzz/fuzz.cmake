# Fuzz targets: with -DKEYWARD_FUZZ=ON (and CC=clang) each is a libFuzzer
# binary (ci/fuzz runs each for a bounded time: fuzz_x -max_total_time=60
# tests/fuzz/corpus/x); otherwise each replays its seed corpus as a ctest test.
#   policy     policy JSON             azure      Key Vault policies
#   keyref     reference DER, URIs     names      subjects and SANs
#   tpm2_blob  TPM key blobs           certs      what cert merge reads
#   import     cert import PEM/PKCS#12 pin_source file:/env: pin sources
#   refpem     the provider's reference-PEM decoders
#   uri        the provider's keyward: store loader
#   cli        the command line (every command's argument parsing)
#   http_head  keyward serve's request heads (what a peer sends unauthenticated)
#   csr        CSRs from other hosts (keyward ca sign)
#   acme       what an ACME server sends: headers, JSON, problems, renewalInfo
#   agent_msg  keyward agent's messages (what any local user may send)
set(KW_FUZZ_TARGETS policy azure keyref names tpm2_blob certs import pin_source refpem uri cli http_head csr acme agent_msg)
set(KW_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
foreach(t ${KW_FUZZ_TARGETS})
  if(KEYWARD_FUZZ)
    add_executable(fuzz_${t} ${KW_FUZZ_DIR}/fuzz_${t}.c)
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(fuzz_${t} ${KW_FUZZ_DIR}/fuzz_${t}.c ${KW_FUZZ_DIR}/replay.c)
  endif()
  target_link_libraries(fuzz_${t} PRIVATE keyward)
  target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/core
    ${PROJECT_SOURCE_DIR}/backends)
  add_test(NAME fuzz_${t} COMMAND fuzz_${t} ${KW_FUZZ_DIR}/corpus/${t})
endforeach()

# The provider's code compiled into its targets, registered as a built-in
# provider (see fuzz_provider.h).
file(GLOB KW_FUZZ_PROVIDER_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/provider/*.c)
foreach(t refpem uri)
  target_sources(fuzz_${t} PRIVATE ${KW_FUZZ_PROVIDER_SOURCES})
  target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/provider)
  target_compile_definitions(fuzz_${t} PRIVATE KEYWARD_VERSION="${PROJECT_VERSION}")
endforeach()

# The CLI without its main() (cli/entry.c), linked as keyward-cli is.
get_target_property(KW_FUZZ_CLI_SOURCES keyward-cli SOURCES)
list(FILTER KW_FUZZ_CLI_SOURCES EXCLUDE REGEX "/entry\\.c$")
target_sources(fuzz_cli PRIVATE ${KW_FUZZ_CLI_SOURCES})
target_include_directories(fuzz_cli PRIVATE ${PROJECT_SOURCE_DIR}/cli
  $<TARGET_PROPERTY:keyward-cli,INCLUDE_DIRECTORIES>)
target_link_libraries(fuzz_cli PRIVATE $<TARGET_PROPERTY:keyward-cli,LINK_LIBRARIES>)

# The server's request head parser, with the server's internal header.
target_sources(fuzz_http_head PRIVATE ${PROJECT_SOURCE_DIR}/server/http_parse.c)
target_include_directories(fuzz_http_head PRIVATE ${PROJECT_SOURCE_DIR})

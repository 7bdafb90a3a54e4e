# keyward's secrets, end to end (issue 7 item 6). What is proven elsewhere
# and not repeated here:
#   pin file open to group/others refused ........ core/common/test_secret.c,
#                                                  cli/test_cli_backend.c (chmod advice)
#   store dir / database with loose modes refused  cli/test_cli_store.c
#     with the chmod that fixes it                 (store_open_to_others_...)
#   PIN not in the store's rows or CLI output ..... cli/test_cli_store.c
#   command channel environment (library level) .. core/lifecycle/test_notify.c
#   imported key bytes wiped (memory canary) ...... core/cert/test_import_wipe.c
# Here: the raw bytes of the database, its WAL and shared memory; argv of every
# process and the environment of deploy hooks and command channels while
# keyward runs them; KEYWARD_DEBUG output of the CLI and of the provider; the
# event log; pin files that are FIFOs or symlinks; the import password.
kw_add_test(test_secrets ${CMAKE_CURRENT_SOURCE_DIR}/security/test_secrets.c DEVICES --p11)
add_dependencies(test_secrets keyward-provider)
set_property(TEST test_secrets APPEND PROPERTY ENVIRONMENT
  "KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
set_property(TEST test_secrets APPEND PROPERTY LABELS security)

# A process holding a secret leaves no core (issue 14, item 7): p11-barrier.so
# (tests/backends/pkcs11_parallel.cmake) holds an import inside C_CreateObject.
kw_add_test(test_core_dump ${CMAKE_CURRENT_SOURCE_DIR}/security/test_core_dump.c DEVICES --p11)
add_dependencies(test_core_dump p11-barrier)
set_property(TEST test_core_dump APPEND PROPERTY ENVIRONMENT
  "KW_TEST_P11_BARRIER=$<TARGET_FILE:p11-barrier>")
set_property(TEST test_core_dump APPEND PROPERTY LABELS security)

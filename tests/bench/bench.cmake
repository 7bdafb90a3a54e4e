# Smoke test of the bench programs (with -DKEYWARD_BENCH=ON): each signing
# path signs for a moment and its signatures verify; the store generator
# writes certificates that cert list shows. No timing is asserted.
if(TARGET kwbench-sign AND TARGET kwbench-store)
  add_test(NAME bench_smoke COMMAND ${KW_HARNESS} --tpm --p11 --
    ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench-smoke)
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 300 ENVIRONMENT
    "KW_TEST_KEYWARD_BIN=$<TARGET_FILE:keyward-cli>;KW_BENCH_DIR=$<TARGET_FILE_DIR:kwbench-sign>;KW_TEST_PROVIDER_DIR=$<TARGET_FILE_DIR:keyward-provider>")
endif()

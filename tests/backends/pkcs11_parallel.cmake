# Two PKCS#11 signatures in the token at once: p11-barrier.so sits between
# keyward and the harness's SoftHSM2 and counts the callers inside C_Sign.
find_package(Threads REQUIRED)
add_library(p11-barrier MODULE ${CMAKE_CURRENT_SOURCE_DIR}/support/p11-barrier.c)
target_include_directories(p11-barrier PRIVATE ${P11KIT_INCLUDE_DIRS})
target_link_libraries(p11-barrier PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(p11-barrier PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)

kw_add_test(test_pkcs11_parallel ${CMAKE_CURRENT_SOURCE_DIR}/backends/test_pkcs11_parallel.c
  DEVICES --p11)
target_link_libraries(test_pkcs11_parallel PRIVATE PkgConfig::P11KIT Threads::Threads
  ${CMAKE_DL_LIBS})
add_dependencies(test_pkcs11_parallel p11-barrier)
set_property(TEST test_pkcs11_parallel APPEND PROPERTY ENVIRONMENT
  "KW_TEST_P11_BARRIER=$<TARGET_FILE:p11-barrier>")

# Fuzz targets: with -DKEYWARD_FUZZ=ON (and CC=clang) each is a libFuzzer
# binary (bench: fuzz_x -max_total_time=60 tests/fuzz/corpus/x); otherwise
# each replays its seed corpus as a ctest test.
set(KW_FUZZ_TARGETS policy azure keyref names tpm2_blob certs)
foreach(t ${KW_FUZZ_TARGETS})
  if(KEYWARD_FUZZ)
    add_executable(fuzz_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.c)
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(fuzz_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.c
      ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.c)
  endif()
  target_link_libraries(fuzz_${t} PRIVATE keyward)
  target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/core
    ${PROJECT_SOURCE_DIR}/backends)
  add_test(NAME fuzz_${t} COMMAND fuzz_${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${t})
endforeach()

# Run by ctest (client_install): proves that an installed libskuld is usable
# from outside the tree through pkg-config alone.
#   -DBUILD_DIR -DWORK_DIR -DCC -DEXTRA_FLAGS -DLIBDIR
cmake_minimum_required(VERSION 3.25)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component libskuld --prefix ${prefix})
foreach(file include/skuld/skuld.h include/skuld/protocol.h ${LIBDIR}/libskuld.a
             ${LIBDIR}/libskuld.so ${LIBDIR}/pkgconfig/skuld.pc)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()

# The five-line program.
file(WRITE ${WORK_DIR}/hello.c [=[
#include <skuld/skuld.h>
#include <stdio.h>
int main(void) {
	skuld_u128 key = skuld_key("till-1", "receipt-42", 1, "sale");
	printf("%s %016llx %s\n", skuld_strerror(SKULD_INSUFFICIENT), (unsigned long long)key.hi, skuld_status_name(SKULD_ERR_TOKEN));
	return skuld_u128_is_zero(key); }
]=])

set(env ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig)
run(${env} sh -c "${CC} ${EXTRA_FLAGS} -Wall -Werror hello.c $(pkg-config --cflags --libs skuld) -o hello"
    WORKING_DIRECTORY ${WORK_DIR})
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${prefix}/${LIBDIR} ${WORK_DIR}/hello)
set(shared_output "${RUN_OUTPUT}")
if(NOT shared_output MATCHES "^not enough stock available [0-9a-f]+ ERR_TOKEN\n$")
  message(FATAL_ERROR "unexpected output of the shared build: '${shared_output}'")
endif()

# The same program against libskuld.a (pkg-config --static for its deps).
run(${env} sh -c "${CC} ${EXTRA_FLAGS} hello.c $(pkg-config --cflags skuld) -L${prefix}/${LIBDIR} -Wl,-Bstatic -lskuld -Wl,-Bdynamic $(pkg-config --static --libs-only-l libxxhash libssl libcrypto) -pthread -o hello-static"
    WORKING_DIRECTORY ${WORK_DIR})
run(${WORK_DIR}/hello-static)
if(NOT RUN_OUTPUT STREQUAL shared_output)
  message(FATAL_ERROR "static and shared builds disagree: '${RUN_OUTPUT}'")
endif()

# libskuld.so exports skuld_* and nothing else.
run(nm -D --defined-only --format=posix ${prefix}/${LIBDIR}/libskuld.so)
string(REPLACE "\n" ";" lines "${RUN_OUTPUT}")
set(exported 0)
foreach(line ${lines})
  string(REGEX MATCH "^[^ ]+" symbol "${line}")
  if(symbol STREQUAL "" OR symbol STREQUAL "SKULD_0")
    continue()
  endif()
  if(NOT symbol MATCHES "^skuld_[a-z]")
    message(FATAL_ERROR "libskuld.so exports ${symbol}")
  endif()
  math(EXPR exported "${exported} + 1")
endforeach()
if(exported LESS 20)
  message(FATAL_ERROR "libskuld.so exports only ${exported} symbols")
endif()
message(STATUS "libskuld installed, built with pkg-config, ${exported} skuld_ symbols exported")

# Finds tapegrad's dependencies where Debian 12 puts them, with errors that say what to install.
find_package(Threads REQUIRED)

# BLIS: Debian installs one copy per threading model under a folder of its own and ships no
# pkg-config file. The OpenMP build is preferred: the pthread build was measured at under
# 2 GFLOP/s on small products with 2 threads.
set(_tg_multiarch /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
find_path(BLIS_INCLUDE_DIR blis.h
  PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} /usr/include /usr/local/include
  PATH_SUFFIXES blis-openmp blis-serial blis-pthread blis NO_DEFAULT_PATH)
find_library(BLIS_LIBRARY NAMES blis
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE} /usr/lib /usr/local/lib
  PATH_SUFFIXES blis-openmp blis-serial blis-pthread NO_DEFAULT_PATH)
if(NOT BLIS_INCLUDE_DIR OR NOT BLIS_LIBRARY)
  message(FATAL_ERROR "tapegrad needs BLIS: install Debian's libblis-openmp-dev "
    "(apt-get install libblis-openmp-dev), or set BLIS_INCLUDE_DIR and BLIS_LIBRARY.")
endif()
if(BLIS_INCLUDE_DIR MATCHES "pthread")
  message(WARNING "Using the pthread build of BLIS (${BLIS_INCLUDE_DIR}); the OpenMP build "
    "(libblis-openmp-dev) is much faster on small products with several threads.")
endif()
add_library(tg::blis INTERFACE IMPORTED)
set_target_properties(tg::blis PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${BLIS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${BLIS_LIBRARY}")
message(STATUS "BLIS: ${BLIS_LIBRARY}")

find_path(XXHASH_INCLUDE_DIR xxhash.h)
find_library(XXHASH_LIBRARY NAMES xxhash)
if(NOT XXHASH_INCLUDE_DIR OR NOT XXHASH_LIBRARY)
  message(FATAL_ERROR "tapegrad needs xxHash: install Debian's libxxhash-dev (apt-get install libxxhash-dev).")
endif()
add_library(tg::xxhash INTERFACE IMPORTED)
set_target_properties(tg::xxhash PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${XXHASH_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES "${XXHASH_LIBRARY}")

# jansson parses safetensors headers: a strict parser (it can reject duplicate keys) with
# line/column error messages, maintained, in Debian as libjansson-dev.
find_path(JANSSON_INCLUDE_DIR jansson.h)
find_library(JANSSON_LIBRARY NAMES jansson)
if(NOT JANSSON_INCLUDE_DIR OR NOT JANSSON_LIBRARY)
  message(FATAL_ERROR "tapegrad needs jansson: install Debian's libjansson-dev (apt-get install libjansson-dev).")
endif()
add_library(tg::jansson INTERFACE IMPORTED)
set_target_properties(tg::jansson PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${JANSSON_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES "${JANSSON_LIBRARY}")

if(TG_BUILD_TESTS)
  find_package(PkgConfig)
  if(PkgConfig_FOUND)
    pkg_check_modules(CRITERION IMPORTED_TARGET criterion)
  endif()
  if(NOT CRITERION_FOUND)
    message(FATAL_ERROR "The tests need Criterion: install Debian's libcriterion-dev and pkg-config "
      "(apt-get install libcriterion-dev pkg-config), or configure with -DTG_BUILD_TESTS=OFF.")
  endif()
endif()

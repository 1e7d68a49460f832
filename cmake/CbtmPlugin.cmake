# Every plugin target is a dependency of `cbtm_all_plugins` (tests and the app depend on it).
if(NOT TARGET cbtm_all_plugins)
  add_custom_target(cbtm_all_plugins)
endif()

# cbtm_add_plugin(NAME SOURCES... [TORCH] [LIBS ...])
#
# Builds one plugin shared library `libcbtm_<NAME>.so` into the plugin directory that
# bin/cbtm scans (build/lib/cbtm/plugins, installed to lib/cbtm/plugins). Plugins link the
# framework (and, with TORCH, LibTorch and the precompiled torch header).
function(cbtm_add_plugin NAME)
  cmake_parse_arguments(P "TORCH" "" "SOURCES;LIBS" ${ARGN})
  set(target cbtm_${NAME})
  add_library(${target} MODULE ${P_SOURCES} ${P_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE cbtm_framework ${P_LIBS})
  if(P_TORCH)
    target_link_libraries(${target} PRIVATE torch)
    cbtm_use_torch_pch(${target})
  endif()
  set_target_properties(${target} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CBTM_PLUGIN_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/cbtm/plugins)
  add_dependencies(cbtm_all_plugins ${target})
endfunction()

# One precompiled <torch/torch.h>, shared by every target that includes LibTorch.
function(cbtm_use_torch_pch target)
  if(NOT TARGET cbtm_torch_pch)
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_precompile_headers(${target} REUSE_FROM cbtm_torch_pch_exe)
  else()
    target_precompile_headers(${target} REUSE_FROM cbtm_torch_pch)
  endif()
endfunction()

# Adds every immediate subdirectory of the current source dir that has a CMakeLists.txt
# (each plugin lives in its own folder: embedders/tfidf, clusterers/kmeans, ...).
# Folders listed in CBTM_SKIP_DIRS (paths relative to the source root) are left out.
set(CBTM_SKIP_DIRS "" CACHE STRING "Source folders (relative to the root) to leave out of the build")
macro(cbtm_add_subdirectories)
  file(GLOB _cbtm_children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _cbtm_children)
  foreach(_c ${_cbtm_children})
    file(RELATIVE_PATH _cbtm_rel ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${_c})
    if(_cbtm_rel IN_LIST CBTM_SKIP_DIRS)
      message(STATUS "cbtm: skipping ${_cbtm_rel} (CBTM_SKIP_DIRS)")
    elseif(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_c} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_c}/CMakeLists.txt)
      add_subdirectory(${_c})
    endif()
  endforeach()
endmacro()

# FindTorchOrPython.cmake -- locate LibTorch for frost.
#
#   find_package(TorchOrPython REQUIRED)   # with this directory on CMAKE_MODULE_PATH
#
# 1. find_package(Torch QUIET): the Debian package libtorch-dev, a LibTorch zip
#    unpacked somewhere on CMAKE_PREFIX_PATH, or Torch_DIR.
# 2. Otherwise, if a python3 with the `torch` module exists, ask it for
#    torch.utils.cmake_prefix_path, append that to CMAKE_PREFIX_PATH and retry.
# 3. Otherwise stop with an error that says what to install or set.
#
# Afterwards the usual TorchConfig variables are set (TORCH_LIBRARIES,
# TORCH_CXX_FLAGS, TORCH_INCLUDE_DIRS) and additionally
#   FROST_TORCH_CXX_FLAGS  -- TORCH_CXX_FLAGS split into a list of options.
# Like every find module this runs in the caller's variable scope.

if(NOT Torch_FOUND)
  find_package(Torch QUIET)
endif()

if(NOT Torch_FOUND)
  find_program(FROST_PYTHON3_EXECUTABLE NAMES python3 python)
  set(_frost_torch_prefix "")
  if(FROST_PYTHON3_EXECUTABLE)
    execute_process(
      COMMAND "${FROST_PYTHON3_EXECUTABLE}" -c "import torch;print(torch.utils.cmake_prefix_path)"
      RESULT_VARIABLE _frost_py_rc
      OUTPUT_VARIABLE _frost_torch_prefix
      ERROR_QUIET
      OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT _frost_py_rc EQUAL 0)
      set(_frost_torch_prefix "")
    endif()
  endif()
  if(_frost_torch_prefix)
    message(STATUS "frost: found LibTorch through Python torch at ${_frost_torch_prefix}")
    list(APPEND CMAKE_PREFIX_PATH "${_frost_torch_prefix}")
    find_package(Torch REQUIRED)
  else()
    set(_frost_torch_msg
      "frost: LibTorch not found. Install it (Debian 12: `sudo apt-get install libtorch-dev`, "
      "or run scripts/deps.sh), or point CMake at an unpacked LibTorch with "
      "-DCMAKE_PREFIX_PATH=/path/to/libtorch (or -DTorch_DIR=.../share/cmake/Torch), "
      "or install the Python package `torch` for python3.")
    string(CONCAT _frost_torch_msg ${_frost_torch_msg})
    if(TorchOrPython_FIND_REQUIRED)
      message(FATAL_ERROR "${_frost_torch_msg}")
    elseif(NOT TorchOrPython_FIND_QUIETLY)
      message(WARNING "${_frost_torch_msg}")
    endif()
  endif()
  unset(_frost_py_rc)
  unset(_frost_torch_prefix)
  unset(_frost_torch_msg)
endif()

set(FROST_TORCH_CXX_FLAGS "")
if(TORCH_CXX_FLAGS)
  separate_arguments(FROST_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
endif()

set(TorchOrPython_FOUND ${Torch_FOUND})

# Fails unless README quotes SOURCE as it is: a ```cpp block of README equals
# SOURCE without its opening comment lines (the file's own header).
#   cmake -DREADME=README.md -DSOURCE=examples/quickstart.cpp -P tests/readme_quotes.cmake
file(READ "${SOURCE}" code)
string(REGEX REPLACE "^(//[^\n]*\n)+\n?" "" code "${code}")
file(READ "${README}" readme)
string(FIND "${readme}" "```cpp\n${code}```\n" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README} does not quote ${SOURCE} as it is: copy the file, without its "
    "opening comment lines, into the README's ```cpp block")
endif()
message(STATUS "${README} quotes ${SOURCE}")

// The shipped SmartFRZ predictor is found with no path given, from wherever
// frost is used: prints the path it loaded (scripts/test.sh checks that an
// installed package reads its own copy under the install prefix).
#include <frost/frost.hpp>
#include <frost/predictor.hpp>

#include <iostream>

int main() {
  try {
    const auto path = frost::predictor::default_path();
    auto p = frost::predictor::load(path);
    std::cout << path << "\n";
    return p->options.subset() > 0 ? 0 : 1;
  } catch (const frost::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

// Branches: the model's concurrency hints (backend/ops.h branch_*) as a scope. Constructing one forks; side(f)
// issues f's ops as the side branch; the scope's end joins, also when an op throws, so the backend never stays
// forked. Ops issued outside side() are main ops. Contract (ops.h): the two branches touch disjoint outputs, except
// that main ops issued after Ops::branch_wait_mark() may read what the side ops before mark() wrote.
#pragma once
#include <utility>

#include "backend/ops.h"

namespace dsv4::model {

class Branches {
 public:
  explicit Branches(backend::Ops& ops) : ops_(ops) { ops_.branch_fork(); }
  ~Branches() {
    try {
      ops_.branch_side(false);
      ops_.branch_join();
    } catch (...) {  // a CUDA error here is reported by the next op; unwinding must not throw
    }
  }
  Branches(const Branches&) = delete;
  Branches& operator=(const Branches&) = delete;

  template <typename F>
  void side(F&& f) {
    ops_.branch_side(true);
    std::forward<F>(f)();
    ops_.branch_side(false);
  }
  // A partial join: mark() notes the side ops issued so far; the main ops issued after wait_mark() wait for them.
  void mark() { ops_.branch_mark(); }

 private:
  backend::Ops& ops_;
};

}  // namespace dsv4::model

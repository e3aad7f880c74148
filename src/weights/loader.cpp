// load_weights (loader.h): checkpoint discovery + binding.
#include "weights/loader.h"

#include "core/log.h"
#include "weights/binder.h"
#include "weights/checkpoint.h"

namespace dsv4::weights {

Result<ModelWeights> load_weights(const std::filesystem::path& dir, const model::ModelConfig& cfg) {
  DSV4_TRY(ckpt, Checkpoint::open(dir));
  const std::string layout = ckpt->layout();
  const size_t n_files = ckpt->n_files();
  DSV4_TRY(weights, bind_weights(ckpt, cfg));
  log::info("loaded " + dir.string() + ": " + std::to_string(n_files) + " file(s), layout " + layout +
            ", naming " + weights.naming + ", " + std::to_string(weights.layers.size()) + " layers, " +
            std::to_string(weights.mtp.size()) + " MTP");
  return std::move(weights);
}

}  // namespace dsv4::weights

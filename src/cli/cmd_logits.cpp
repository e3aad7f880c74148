// `dsv4 logits -m DIR --tokens ids.json --out logits.npy`: float32 [n_tokens, vocab] logits of every
// position, from one prefill (or chunked prefill with --chunk); --mtp-out adds the MTP block's logits.
#include <iostream>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/npy.h"

namespace dsv4::cli {

void register_logits(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("logits", "write the logits of every position as a float32 .npy file");
  static ModelOptions mo;
  static std::string tokens_path, out_path, mtp_out;
  static int64_t chunk = 0;
  add_model_options(cmd, mo);
  cmd->add_option("--tokens", tokens_path, "JSON array of token ids (- for stdin)")->required();
  cmd->add_option("--out", out_path, "output .npy path")->required();
  cmd->add_option("--chunk", chunk, "prefill in chunks of this many tokens (0: one chunk)");
  cmd->add_option("--mtp-out", mtp_out, "also write the MTP block's logits [n-1, vocab] (row t: hidden t + token t+1)");
  cmd->callback([&ctx] {
    ctx.exit_code = 1;
    std::vector<int32_t> ids;
    auto m = load_model_and_tokens(mo, tokens_path, ids);
    if (!m) return;
    HostTensor logits = runtime::all_logits(*m, ids, chunk);
    if (auto s = write_npy_f32(out_path, logits.data(), logits.shape()); !s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return;
    }
    std::cerr << "wrote " << out_path << " " << shape_str(logits.shape()) << "\n";
    if (!mtp_out.empty()) {
      auto ml = runtime::mtp_logits(*m, ids);
      if (!ml.ok()) {
        std::cerr << "error: " << ml.message() << "\n";
        return;
      }
      if (auto s = write_npy_f32(mtp_out, ml->data(), ml->shape()); !s.ok()) {
        std::cerr << "error: " << s.message() << "\n";
        return;
      }
      std::cerr << "wrote " << mtp_out << " " << shape_str(ml->shape()) << "\n";
    }
    ctx.exit_code = 0;
  });
}

}  // namespace dsv4::cli

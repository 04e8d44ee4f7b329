// Files written whole or not at all.
#pragma once

#include <string>
#include <string_view>

namespace spindle::detail {

/// Writes `bytes` to a temporary file of its own beside `path`, flushes it to the disk, then
/// renames it over `path`: a reader sees the old file or the new one, never a part, and a
/// failure (a full disk, a size limit, a folder that cannot be written) leaves the old file
/// as it was. Saves of one path at once, from threads or processes, each land whole (the
/// last one stays). The file keeps its mode; a symbolic link `path` keeps pointing at it.
/// Returns "" on success, else why it failed (the temporary file is removed).
[[nodiscard]] std::string replace_file(const std::string& path, std::string_view bytes);

}  // namespace spindle::detail

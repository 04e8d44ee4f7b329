// Files written whole or not at all: see file.hpp.
#include "io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace spindle::detail {

std::string replace_file(const std::string& path, std::string_view bytes) {
  // A symbolic link is followed: the file it names is replaced, and the link stays.
  std::error_code ignored;
  const std::string target = std::filesystem::weakly_canonical(path, ignored).string();
  const std::string& where = target.empty() ? path : target;
  // A unique temporary (mkstemp: O_EXCL, mode 0600), so that threads or processes saving the
  // same file at once never write into each other's; the last rename wins, whole.
  std::vector<char> temporary(where.begin(), where.end());
  const char suffix[] = ".tmp-XXXXXX";
  temporary.insert(temporary.end(), suffix, suffix + sizeof suffix);
  int fd = ::mkstemp(temporary.data());
  if (fd < 0) return "cannot create a file beside it: " + std::string(std::strerror(errno));
  auto fail = [&](const char* step, int error) {
    if (fd >= 0) ::close(fd);
    ::unlink(temporary.data());
    return std::string(step) + ": " + std::strerror(error);
  };
  // The new file keeps the old one's mode; a new file gets what the umask allows of 0644.
  struct stat old {};
  mode_t mode = 0644;
  if (::stat(where.c_str(), &old) == 0) {
    mode = old.st_mode & 07777;
  } else {
    mode_t mask = ::umask(0);
    ::umask(mask);
    mode &= ~mask;
  }
  if (::fchmod(fd, mode) != 0) return fail("cannot set its mode", errno);
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) return fail("cannot write", errno);
    if (wrote == 0) return fail("cannot write", ENOSPC);
    done += static_cast<std::size_t>(wrote);
  }
  if (::fsync(fd) != 0) return fail("cannot flush to the disk", errno);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail("cannot close", errno);
  if (std::rename(temporary.data(), where.c_str()) != 0) {
    return fail("cannot rename into place", errno);
  }
  // The rename itself reaches the disk with the folder's entry.
  std::string folder = std::filesystem::path(where).parent_path().string();
  if (int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return "";
}

}  // namespace spindle::detail

// Files written whole or not at all: see file.hpp.
#include "io/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace spindle::detail {

std::string replace_file(const std::string& path, std::string_view bytes) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::string("cannot create '") + temporary + "': " + std::strerror(errno);
  auto fail = [&](const char* step) {
    std::string why = std::string(step) + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(temporary.c_str());
    return why;
  };
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return fail("cannot write");
    done += static_cast<std::size_t>(wrote);
  }
  if (::fsync(fd) != 0) return fail("cannot flush to the disk");
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail("cannot close");
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  return "";
}

}  // namespace spindle::detail

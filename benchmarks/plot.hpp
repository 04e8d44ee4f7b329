// Bar charts as PNG files, drawn by gnuplot (Debian's gnuplot-nox), for benchmark reports.
//
//   bench::Chart chart{"title", "y axis", {{"row", {1.0, 2.0}}}, {"series a", "series b"}};
//   if (!bench::plot_bars(chart, "out.png")) ...   // says why on stderr
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

struct Chart {
  std::string title;
  std::string ylabel;
  /// One group of bars per row: its label and one value per series.
  std::vector<std::pair<std::string, std::vector<double>>> rows;
  std::vector<std::string> series;
  bool log_scale = false;
};

// gnuplot's strings are double-quoted: escape what would end them.
inline std::string gnuplot_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

/// Draws `chart` into `png`; false (with the reason on stderr) if gnuplot is missing or fails.
inline bool plot_bars(const Chart& chart, const std::string& png) {
  std::string data = png + ".dat";
  {
    std::ofstream out(data);
    for (const auto& [label, values] : chart.rows) {
      out << gnuplot_string(label);
      for (double v : values) out << ' ' << v;
      out << '\n';
    }
    if (!out) {
      std::fprintf(stderr, "plot: cannot write '%s'\n", data.c_str());
      return false;
    }
  }
  std::string script =
      "set terminal pngcairo size 1100,600 noenhanced\n"
      "set output " + gnuplot_string(png) + "\n"
      "set title " + gnuplot_string(chart.title) + "\n"
      "set ylabel " + gnuplot_string(chart.ylabel) + "\n"
      "set style data histograms\nset style histogram cluster gap 1\n"
      "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset grid ytics\n"
      "set xtics rotate by -25 left\nset yrange [0:*]\n" +
      std::string(chart.series.size() > 1 ? "set key outside top center horizontal\n"
                                          : "set key off\n") +
      std::string(chart.log_scale ? "set logscale y\nset yrange [*:*]\n" : "") + "plot ";
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    script += std::string(s ? ", " : "") + gnuplot_string(data) + " using " + std::to_string(s + 2) +
              (s ? "" : ":xtic(1)") + " title " + gnuplot_string(chart.series[s]);
  }
  script += "\n";
  FILE* gnuplot = popen("gnuplot 2>&1", "w");
  if (!gnuplot) {
    std::fprintf(stderr, "plot: cannot start gnuplot (apt-get install gnuplot-nox)\n");
    return false;
  }
  std::fputs(script.c_str(), gnuplot);
  int status = pclose(gnuplot);
  std::filesystem::remove(data);
  if (status != 0) {
    std::fprintf(stderr,
                 "plot: gnuplot failed (exit status %d) drawing '%s'; is it installed? "
                 "(apt-get install gnuplot-nox)\n",
                 status, png.c_str());
    return false;
  }
  std::printf("\nPlot: %s\n", png.c_str());
  return true;
}

}  // namespace bench

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

/// Runs a gnuplot script that draws `png`; false (with the reason on stderr) if gnuplot is
/// missing or fails. `data` files are removed afterwards.
inline bool run_gnuplot(const std::string& script, const std::string& png,
                        const std::vector<std::string>& data) {
  FILE* gnuplot = popen("gnuplot 2>&1", "w");
  if (!gnuplot) {
    std::fprintf(stderr, "plot: cannot start gnuplot (apt-get install gnuplot-nox)\n");
    return false;
  }
  std::fputs(script.c_str(), gnuplot);
  int status = pclose(gnuplot);
  for (const std::string& file : data) std::filesystem::remove(file);
  if (status != 0) {
    std::fprintf(stderr,
                 "plot: gnuplot failed (exit status %d) drawing '%s'; is it installed? "
                 "(apt-get install gnuplot-nox)\n",
                 status, png.c_str());
    return false;
  }
  return true;
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
  if (!run_gnuplot(script, png, {data})) return false;
  std::printf("\nPlot: %s\n", png.c_str());
  return true;
}

/// A panel of lines: each series is a name and its (x, y) points.
struct LineChart {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> series;
  std::string key = "bottom right";  // where gnuplot puts the legend
};

/// Draws `panels` side by side into `png`; false (with the reason on stderr) if gnuplot is
/// missing or fails.
inline bool plot_lines(const std::vector<LineChart>& panels, const std::string& png) {
  std::vector<std::string> files;
  std::string script = "set terminal pngcairo size " + std::to_string(550 * panels.size()) +
                       ",500 noenhanced\nset output " + gnuplot_string(png) +
                       "\nset multiplot layout 1," + std::to_string(panels.size()) +
                       "\nset grid\n";
  for (const LineChart& panel : panels) {
    script += "set key " + panel.key + "\nset title " + gnuplot_string(panel.title) +
              "\nset xlabel " +
              gnuplot_string(panel.xlabel) + "\nset ylabel " + gnuplot_string(panel.ylabel) +
              "\nplot ";
    for (std::size_t s = 0; s < panel.series.size(); ++s) {
      std::string data = png + "." + std::to_string(files.size()) + ".dat";
      files.push_back(data);
      std::ofstream out(data);
      for (const auto& [x, y] : panel.series[s].second) out << x << ' ' << y << '\n';
      if (!out) {
        std::fprintf(stderr, "plot: cannot write '%s'\n", data.c_str());
        for (const std::string& file : files) std::filesystem::remove(file);
        return false;
      }
      script += std::string(s ? ", " : "") + gnuplot_string(data) +
                " using 1:2 with linespoints title " + gnuplot_string(panel.series[s].first);
    }
    script += "\n";
  }
  script += "unset multiplot\n";
  return run_gnuplot(script, png, files);
}

}  // namespace bench

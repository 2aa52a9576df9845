# plot.gp: bench/run's scale curve as SVG. Called with -e "datafile='...'; outfile='...';
# openssl=0|1"; the data columns are N, ns per resume (asyncjob, OpenSSL), resident KiB per
# job (same); OpenSSL's columns are NaN when it was not measured.
set terminal svg size 900,700 dynamic enhanced font 'sans,12'
set output outfile
set datafile missing 'NaN'
set multiplot layout 2,1 title 'N jobs paused on one thread, resumed round-robin'
set logscale x 10
set format x '%.0s%c'
set style line 1 lw 2 pt 7 ps 0.7
set style line 2 lw 2 pt 5 ps 0.7
set grid
set key top left
set xlabel 'paused jobs (N)'
set ylabel 'ns per resume'
if (openssl) {
  plot datafile using 1:2 with linespoints ls 1 title 'asyncjob', \
       datafile using 1:3 with linespoints ls 2 title 'OpenSSL libcrypto'
} else {
  plot datafile using 1:2 with linespoints ls 1 title 'asyncjob'
}
set ylabel 'resident KiB per job (log)'
set logscale y 10
set key top right
if (openssl) {
  plot datafile using 1:4 with linespoints ls 1 title 'asyncjob (guard page per stack)', \
       datafile using 1:5 with linespoints ls 2 title 'OpenSSL libcrypto (no guard)'
} else {
  plot datafile using 1:4 with linespoints ls 1 title 'asyncjob (guard page per stack)'
}
unset multiplot

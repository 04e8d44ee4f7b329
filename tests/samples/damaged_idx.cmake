# Runs train_fashion_mnist on damaged copies of Fashion-MNIST's IDX files: each must be
# refused before any training with exit status 2 and a message naming the file and what is
# wrong with it.
#   cmake -DSAMPLE=path/to/train_fashion_mnist -DWORK=scratch/folder -P damaged_idx.cmake
set(real /usr/share/datasets/fashion-mnist)
set(names train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
          t10k-labels-idx1-ubyte.gz)

# Fills WORK with the real files, then lets `damage` spoil one; runs the sample on it.
function(expect_refused case pattern)
  file(REMOVE_RECURSE ${WORK})
  file(MAKE_DIRECTORY ${WORK})
  foreach(name IN LISTS names)
    file(CREATE_LINK ${real}/${name} ${WORK}/${name} COPY_ON_ERROR SYMBOLIC)
  endforeach()
  cmake_language(CALL damage_${case})
  execute_process(COMMAND ${SAMPLE} --quick --data ${WORK} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "${case}: status ${rc}, stderr '${err}', stdout '${out}'")
  endif()
  message(STATUS "${case}: refused: ${err}")
endfunction()

function(damage_truncated)  # a gzip stream cut short
  file(REMOVE ${WORK}/train-images-idx3-ubyte.gz)
  execute_process(COMMAND head -c 30000 ${real}/train-images-idx3-ubyte.gz
                  OUTPUT_FILE ${WORK}/train-images-idx3-ubyte.gz)
endfunction()
function(damage_not_idx)  # not an IDX file at all
  file(REMOVE ${WORK}/train-labels-idx1-ubyte.gz)
  file(WRITE ${WORK}/train-labels-idx1-ubyte.gz "labels, one per line\n")
endfunction()
function(damage_missing)
  file(REMOVE ${WORK}/t10k-labels-idx1-ubyte.gz)
endfunction()
function(damage_mismatched)  # test images with training labels
  file(REMOVE ${WORK}/train-images-idx3-ubyte.gz)
  file(CREATE_LINK ${real}/t10k-images-idx3-ubyte.gz ${WORK}/train-images-idx3-ubyte.gz
       COPY_ON_ERROR SYMBOLIC)
endfunction()
function(damage_swapped)  # labels where images belong: the magic number says so
  file(REMOVE ${WORK}/t10k-images-idx3-ubyte.gz)
  file(CREATE_LINK ${real}/t10k-labels-idx1-ubyte.gz ${WORK}/t10k-images-idx3-ubyte.gz
       COPY_ON_ERROR SYMBOLIC)
endfunction()

expect_refused(truncated "train-images-idx3-ubyte.gz' is damaged")
expect_refused(not_idx "train-labels-idx1-ubyte.gz' is not a Fashion-MNIST IDX file: .*magic number")
expect_refused(missing "cannot open '.*t10k-labels-idx1-ubyte.gz'.*dataset-fashion-mnist")
expect_refused(mismatched "holds 10000 images but .* holds 60000 labels")
expect_refused(swapped "t10k-images-idx3-ubyte.gz' is not a Fashion-MNIST IDX file: its magic number is 0x00000801")
file(REMOVE_RECURSE ${WORK})

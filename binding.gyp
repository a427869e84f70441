{
  "targets": [
    {
      "target_name": "vellum_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/gemm.cc",
        "native/src/backend/binding.cc",
        "native/src/backend/cpu-features.cc",
        "native/src/backend/huge-pages.cc",
        "native/src/backend/kernels-avx2.cc",
        "native/src/backend/kernels-avx512-bf16.cc",
        "native/src/backend/kernels-avx512-vnni.cc",
        "native/src/backend/kernels-common.cc",
        "native/src/backend/kernels-scalar.cc",
        "native/src/backend/mapped-file.cc",
        "native/src/backend/model.cc",
        "native/src/backend/native-model.cc",
        "native/src/backend/ops.cc",
        "native/src/backend/parallel-matmul.cc",
        "native/src/backend/probe.cc",
        "native/src/backend/sampling.cc",
        "native/src/backend/sampling-avx2.cc",
        "native/src/backend/sampling-avx512.cc",
        "native/src/backend/thread-pool.cc",
        "native/src/backend/zeroed-pages.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3"],
      "libraries": ["-pthread"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}

{
  "targets": [
    {
      "target_name": "diffusion_native",
      "sources": ["src/addon.cc", "src/pointwise.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(node onednn-flags.cjs include)"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-trapping-math", "-fopenmp"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(node onednn-flags.cjs libs)", "-fopenmp"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN/../../onednn/install/lib'"],
      "conditions": [
        ["OS=='linux'", {"cflags_cc": ["-march=native"]}],
        ["OS=='mac'", {
          "include_dirs": ["/opt/homebrew/include", "/usr/local/include"],
          "libraries": ["-L/opt/homebrew/lib", "-L/usr/local/lib"],
          "xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"]}
        }]
      ]
    }
  ]
}

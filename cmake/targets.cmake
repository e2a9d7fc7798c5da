# Per-target build settings, spdlog-style: warnings and sanitizers are applied
# to our own targets only, never to the dependencies we find.

function(wsgate_enable_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual)
  if(WSGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12's optimiser reports impossible sizes inside std::string and
    # Beast (GCC bugs 105329, 106199): warn, never fail, in optimised builds.
    set(optimised_false_positives -Wno-error=maybe-uninitialized -Wno-error=array-bounds
        -Wno-error=stringop-overflow -Wno-error=stringop-overread)
    target_compile_options(${target} PRIVATE -Wno-restrict
      "$<$<NOT:$<CONFIG:Debug>>:${optimised_false_positives}>")
  endif()
endfunction()

function(wsgate_enable_sanitizer target)
  if(WSGATE_SANITIZE)
    # No vptr check: it probes memory through a pipe at run time, so at the
    # fd limit (which the hardening suite drives the proxy to) it reports
    # every virtual call as a bad object; ASan still catches the
    # use-after-free it would find.
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize=vptr
                           -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(WSGATE_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()

# One call for every first-party target.
function(wsgate_target target)
  wsgate_enable_warnings(${target})
  wsgate_enable_sanitizer(${target})
endfunction()

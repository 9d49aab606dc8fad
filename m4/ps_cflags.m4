# PS_CHECK_CFLAG(FLAG, ACTION-IF-ACCEPTED, [ACTION-IF-NOT])
# ---------------------------------------------------------
# Whether the C compiler accepts FLAG without a warning about it.
AC_DEFUN([PS_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([ps_var], [ps_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [ps_var], [
    ps_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([ps_var], [yes])], [AS_VAR_SET([ps_var], [no])])
    CFLAGS=$ps_save_CFLAGS])
  AS_VAR_IF([ps_var], [yes], [$2], [$3])
  AS_VAR_POPDEF([ps_var])
])

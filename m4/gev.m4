# GEV_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT])
# Does the C compiler accept FLAG (warnings about unknown flags as errors)?
AC_DEFUN([GEV_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([gev_cv], [gev_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [gev_cv], [
    gev_cflag_save=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([gev_cv], [yes])], [AS_VAR_SET([gev_cv], [no])])
    CFLAGS=$gev_cflag_save])
  AS_VAR_IF([gev_cv], [yes], [$2], [$3])
  AS_VAR_POPDEF([gev_cv])
])

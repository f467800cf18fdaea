#!/usr/bin/env Rscript
# Reference values for the single-arm outcome kinds (issue 10): Kaplan-Meier landmark rates on
# the complementary log-log scale, medians with one-sided CIs on the log and months scales, and
# the (weighted) median of medians. Base R and metafor only.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_outcomes.R
# Inputs : tests/reference/inputs/survival_rates.csv (a made-up five-cohort example with every
#          kind of standard error: two-sided CI, one-sided CI, no CI), sarcoma_medians.csv
# Output : tests/reference/outcome_values.csv (dataset,outcome,subgroup,fit,quantity,study,value;
#          value = sprintf("%.17g"), NA as empty), same long format as metafor_values.csv.
suppressPackageStartupMessages(library(metafor))
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
z <- 1.959964
ref_dir <- file.path("tests", "reference")
out <- list()
emit <- function(dataset, outcome, subgroup, fit, quantity, value, study = "") {
  out[[length(out) + 1]] <<- data.frame(dataset = dataset, outcome = outcome, subgroup = subgroup, fit = fit,
                                        quantity = quantity, study = study,
                                        value = ifelse(is.na(value), "", sprintf("%.17g", value)))
}
emit_fit <- function(dataset, outcome, subgroup, fit, r, back, decreasing = FALSE) {
  p <- predict(r, pi.type = "riley")  # b +/- qt(0.975, k - 2) * sqrt(se^2 + tau2)
  for (q in c("b", "se", "ci.lb", "ci.ub", "tau2", "I2", "QE", "QEp")) emit(dataset, outcome, subgroup, fit, q, as.numeric(r[[q]]))
  emit(dataset, outcome, subgroup, fit, "pi.lb", p$pi.lb)
  emit(dataset, outcome, subgroup, fit, "pi.ub", p$pi.ub)
  lim <- sort(back(c(r$ci.lb, r$ci.ub)))
  pil <- sort(back(c(p$pi.lb, p$pi.ub)))
  emit(dataset, outcome, subgroup, fit, "est_bt", back(as.numeric(r$b)))
  emit(dataset, outcome, subgroup, fit, "ci_lb_bt", lim[1]); emit(dataset, outcome, subgroup, fit, "ci_ub_bt", lim[2])
  emit(dataset, outcome, subgroup, fit, "pi_lb_bt", pil[1]); emit(dataset, outcome, subgroup, fit, "pi_ub_bt", pil[2])
}

# ---- Kaplan-Meier rates: y = log(-log S) --------------------------------------------------
s <- read.csv(file.path(ref_dir, "inputs", "survival_rates.csv"), na.strings = "")
cll <- function(p) log(-log(p))
yi <- cll(s$rate)
sei <- ifelse(!is.na(s$ci_low) & !is.na(s$ci_high), (cll(s$ci_low) - cll(s$ci_high)) / (2 * z),   # two-sided
       ifelse(!is.na(s$ci_low), (cll(s$ci_low) - yi) / z,                                        # one-sided
              sqrt(s$rate * (1 - s$rate) / s$total) / abs(s$rate * log(s$rate))))                # binomial approximation
for (i in seq_along(yi)) {
  emit("survival5", "km_rate", "overall", "ESCALC-CLOGLOG", "yi", yi[i], s$study[i])
  emit("survival5", "km_rate", "overall", "ESCALC-CLOGLOG", "sei", sei[i], s$study[i])
}
back <- function(y) exp(-exp(y))
# rma(yi = log(-log(S)), sei = sei, method = "DL" | "REML"), and REML with test = "knha"
emit_fit("survival5", "km_rate", "overall", "SURV-DL", rma(yi, sei = sei, method = "DL", control = CTRL), back)
emit_fit("survival5", "km_rate", "overall", "SURV-REML", rma(yi, sei = sei, method = "REML", control = CTRL), back)
emit_fit("survival5", "km_rate", "overall", "SURV-REML-HKSJ",
         rma(yi, sei = sei, method = "REML", test = "knha", control = CTRL), back)

# ---- medians, one-sided CIs allowed ----------------------------------------------------------
m <- read.csv(file.path(ref_dir, "inputs", "sarcoma_medians.csv"), na.strings = "")
for (oc in sort(unique(m$outcome), method = "radix")) {
  d <- m[m$outcome == oc, ]
  dd <- d[!is.na(d$ci_low), ]
  # log scale: sei = (log(u) - log(l)) / (2 z), or (log(m) - log(l)) / z when u is not reached
  lsei <- ifelse(is.na(dd$ci_high), (log(dd$estimate) - log(dd$ci_low)) / z, (log(dd$ci_high) - log(dd$ci_low)) / (2 * z))
  msei <- ifelse(is.na(dd$ci_high), (dd$estimate - dd$ci_low) / z, (dd$ci_high - dd$ci_low) / (2 * z))
  emit_fit("sarcoma", oc, "overall", "LOGMEDIAN-DL", rma(log(dd$estimate), sei = lsei, method = "DL", control = CTRL), exp)
  emit_fit("sarcoma", oc, "overall", "LOGMEDIAN-REML", rma(log(dd$estimate), sei = lsei, method = "REML", control = CTRL), exp)
  emit_fit("sarcoma", oc, "overall", "MEDIAN-DL", rma(dd$estimate, sei = msei, method = "DL", control = CTRL), identity)
  # median of medians: median(y); distribution-free CI sort(y)[c(L, k - L + 1)], L = qbinom(0.025, k, 0.5)
  y <- d$estimate[!is.na(d$estimate)]
  k <- length(y)
  emit("sarcoma", oc, "overall", "MEDIAN-MM", "est", median(y))
  L <- qbinom(0.025, k, 0.5)
  ci <- if (L >= 1) sort(y)[c(L, k - L + 1)] else c(NA, NA)
  emit("sarcoma", oc, "overall", "MEDIAN-MM", "ci_lb", ci[1]); emit("sarcoma", oc, "overall", "MEDIAN-MM", "ci_ub", ci[2])
  # n-weighted median: the median of the sample with each cohort's median repeated n times
  emit("sarcoma", oc, "overall", "MEDIAN-WM", "est", median(rep(d$estimate, d$total)))
}
write.csv(do.call(rbind, out), file.path(ref_dir, "outcome_values.csv"), row.names = FALSE, quote = FALSE, na = "")
cat("metafor", as.character(packageVersion("metafor")), "\n")

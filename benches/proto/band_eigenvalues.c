/* Prototype for issue 12, item 1: what the eigenvalues of a covariance cost
 * once it is in band form, against one dsyevd (the sweep's decomposition).
 *
 * A = XᵀX for `rows` random rows × n pixels (ten columns offset, so a few
 * directions dominate), then on one thread: dsytrd_sy2sb (dense → band of
 * half-bandwidth kd, the reduction --cv auto already does per fold),
 * dsytrd_sb2st without vectors (band → tridiagonal by bulge chasing),
 * dsterf (tridiagonal eigenvalues), and dsyevd with vectors on A for
 * reference; prints the times and the largest eigenvalue difference.
 *
 *     gcc -O2 -o /tmp/band_eig benches/proto/band_eigenvalues.c -lopenblas -lm
 *     /tmp/band_eig 2048 64 6000; /tmp/band_eig 4096 64 12000
 *
 * Measured here (quiet machine, 2026-12-01): n = 2048: sy2sb 0.319 s,
 * sb2st 0.171 s, dsterf 0.045 s, dsyevd 1.356 s, eigenvalues within
 * 2.4e-15 of the largest; n = 4096: 2.400 / 0.720 / 0.180 / 11.78 s,
 * 5.0e-15. kd = 32 gave 0.345 / 0.127 s at n = 2048 (no better in all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
void openblas_set_num_threads(int);
void dsytrd_sy2sb_(const char*,const int*,const int*,double*,const int*,double*,const int*,double*,double*,const int*,int*,size_t);
void dsytrd_sb2st_(const char*,const char*,const char*,const int*,const int*,double*,const int*,double*,double*,double*,const int*,double*,const int*,int*,size_t,size_t,size_t);
void dsterf_(const int*,double*,double*,int*);
void dsyevd_(const char*,const char*,const int*,double*,const int*,double*,double*,const int*,int*,const int*,int*,size_t,size_t);
void dgemm_(const char*,const char*,const int*,const int*,const int*,const double*,const double*,const int*,const double*,const int*,const double*,double*,const int*,size_t,size_t);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc,char**argv){
 int n=argc>1?atoi(argv[1]):2048, kd=argc>2?atoi(argv[2]):64, rows=argc>3?atoi(argv[3]):6000;
 openblas_set_num_threads(1);
 double *x=malloc(sizeof(double)*rows*n); srand(1);
 for(long i=0;i<(long)rows*n;i++) x[i]=(rand()/(double)RAND_MAX-0.5)+ ((i% n)<10? 3.0:0);
 double *a=malloc(sizeof(double)*n*n), one=1, zero=0;
 dgemm_("T","N",&n,&n,&rows,&one,x,&rows,x,&rows,&zero,a,&n,1,1);
 double *a0=malloc(sizeof(double)*n*n); memcpy(a0,a,sizeof(double)*n*n);
 int ldab=kd+1, info, lw=-1; double *ab=calloc(ldab*n,8), *tau=malloc(8*n), q;
 dsytrd_sy2sb_("L",&n,&kd,a,&n,ab,&ldab,tau,&q,&lw,&info,1); lw=(int)q; double*w=malloc(8*lw);
 double t0=now(); dsytrd_sy2sb_("L",&n,&kd,a,&n,ab,&ldab,tau,w,&lw,&info,1); double t1=now();
 printf("sy2sb %.3f s info %d\n",t1-t0,info);
 double *d=malloc(8*n),*e=malloc(8*n); int lh=-1; lw=-1; double qh,qw;
 double *ab2=malloc(8*ldab*n); memcpy(ab2,ab,8*ldab*n);
 dsytrd_sb2st_("Y","N","L",&n,&kd,ab2,&ldab,d,e,&qh,&lh,&qw,&lw,&info,1,1,1);
 lh=(int)qh; lw=(int)qw; double*h=malloc(8*(lh+1)),*w2=malloc(8*(lw+1));
 t0=now(); dsytrd_sb2st_("Y","N","L",&n,&kd,ab2,&ldab,d,e,h,&lh,w2,&lw,&info,1,1,1); t1=now();
 printf("sb2st %.3f s info %d (lh %d lw %d)\n",t1-t0,info,lh,lw);
 t0=now(); dsterf_(&n,d,e,&info); t1=now(); printf("dsterf %.3f s info %d\n",t1-t0,info);
 // reference: dsyevd jobz V and N
 double *ev=malloc(8*n); int liw=-1, iq; lw=-1;
 memcpy(a,a0,8*n*n);
 dsyevd_("V","L",&n,a,&n,ev,&q,&lw,&iq,&liw,&info,1,1); lw=(int)q; liw=iq; double*w3=malloc(8*lw); int*iw=malloc(4*liw);
 t0=now(); dsyevd_("V","L",&n,a,&n,ev,w3,&lw,iw,&liw,&info,1,1); t1=now(); printf("dsyevd V %.3f s\n",t1-t0);
 double md=0, mx=fabs(ev[n-1]); for(int i=0;i<n;i++){double r=fabs(d[i]-ev[i]); if(r>md)md=r;}
 printf("max |eig diff| %.3e (rel to max eig %.3e), min eig %.3e\n",md,md/mx,ev[0]);
 return 0;}
